// The backend: the bgrun language server (python -m bgrun.server) started over stdio by vscode-languageclient.

import * as vscode from "vscode";
import {
  CloseAction,
  CloseHandlerResult,
  ErrorAction,
  ErrorHandlerResult,
  LanguageClient,
  LanguageClientOptions,
  ResponseError,
  RevealOutputChannelOn,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { EXTENSION_NAME, SETTINGS_SECTION } from "./constants";
import { BackendStatus } from "./jobFormat";
import { JobCache } from "./jobs";
import { errorMessage, serverOutputChannel, traceError, traceInfo, traceWarn } from "./logging";
import { CheckResult, DriftFound, Job, JobRemoved, ListParams, Methods, jobKey } from "./protocol";
import { serverSettings } from "./settings";
import { BackendPython, BackendSetup, BackendUnavailable, SetupNeeded, showBackendUnavailable } from "./setup";
import { isTrusted } from "./vscodeapi";

// Restarts after a crash allowed within RESTART_WINDOW_MS before the backend stays stopped.
const MAX_RESTARTS = 4;
const RESTART_WINDOW_MS = 3 * 60_000;
// Jobs fetched at start and after each restart, besides every active job.
const LIST_LIMIT = 200;

/** Error of a request that failed, with the server's own message. */
export class RequestFailed extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

function stateName(state: State): string {
  switch (state) {
    case State.Starting:
      return "starting";
    case State.Running:
      return "running";
    case State.Stopped:
      return "stopped";
  }
}

export class Backend implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private python: BackendPython | undefined;
  private pending: Promise<void> = Promise.resolve();
  private statusValue: BackendStatus = "starting";
  private restarts: number[] = [];
  private offering = false;
  private readonly statusChanged = new vscode.EventEmitter<BackendStatus>();
  private readonly driftFound = new vscode.EventEmitter<DriftFound>();
  /** Reason the backend is stopped, for the status bar and for commands that need it. */
  lastError: string | undefined;

  readonly onDidChangeStatus = this.statusChanged.event;
  readonly onDidFindDrift = this.driftFound.event;

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly setup: BackendSetup,
    private readonly jobs: JobCache,
  ) {}

  get status(): BackendStatus {
    return this.statusValue;
  }

  /** The Python that runs the backend, once it has started. */
  get backendPython(): BackendPython | undefined {
    return this.python;
  }

  /** Starts the backend unless it runs. Calls are queued, so start, stop and restart never overlap. */
  start(): Promise<void> {
    return this.enqueue(() => this.startNow());
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.stopNow());
  }

  restart(): Promise<void> {
    return this.enqueue(async () => {
      traceInfo("Restarting the backend");
      await this.stopNow();
      this.restarts = [];
      await this.startNow();
    });
  }

  /** Sets up the private environment again with `basePython` (default: the chosen Python), then restarts the backend with it. */
  setUpAndRestart(basePython?: string): Promise<void> {
    return this.enqueue(async () => {
      await this.stopNow();
      this.setStatus("setup");
      try {
        this.python = await this.setup.setUp(basePython ?? (await this.setup.chosenPython()).command);
      } catch (error) {
        this.fail(errorMessage(error));
        return;
      }
      await this.startNow(this.python);
    });
  }

  /** Sends a request, starting the backend first when needed. Raises RequestFailed with the server's message. */
  async request<R>(method: string, params: unknown): Promise<R> {
    return this.send<R>(await this.runningClient(), method, params);
  }

  /** Reloads every active job and the newest finished ones into the cache. */
  async refreshJobs(): Promise<void> {
    await this.refreshJobsWith(await this.runningClient());
  }

  private async send<R>(client: LanguageClient, method: string, params: unknown): Promise<R> {
    try {
      return await client.sendRequest<R>(method, params);
    } catch (error) {
      if (error instanceof ResponseError) {
        throw new RequestFailed(error.message, error.code);
      }
      throw new RequestFailed(errorMessage(error));
    }
  }

  private async refreshJobsWith(client: LanguageClient): Promise<void> {
    const active = await this.send<Job[]>(client, Methods.list, { states: ["scheduled", "running"] } satisfies ListParams);
    const recent = await this.send<Job[]>(client, Methods.list, { limit: LIST_LIMIT } satisfies ListParams);
    const byKey = new Map<string, Job>();
    for (const job of [...recent, ...active]) {
      byKey.set(jobKey(job), job);
    }
    this.jobs.replaceAll([...byKey.values()]);
  }

  check(repair: boolean): Promise<CheckResult> {
    return this.request<CheckResult>(Methods.check, { repair });
  }

  dispose(): void {
    void this.stop();
    this.statusChanged.dispose();
    this.driftFound.dispose();
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.pending = this.pending.then(step, step);
    return this.pending;
  }

  /**
   * Returns the running client, starting the backend when it is not running. It must not be
   * called from a step of the start/stop queue, which would then wait for itself.
   */
  private async runningClient(): Promise<LanguageClient> {
    if (!isTrusted()) {
      throw new RequestFailed("bgrun starts no backend in Restricted Mode. Trust this workspace to run jobs.");
    }
    if (this.client === undefined || this.client.state !== State.Running) {
      await this.start();
    }
    if (this.client === undefined || this.client.state !== State.Running) {
      throw new RequestFailed(`the bgrun backend is not running: ${this.lastError ?? "it failed to start"}`);
    }
    return this.client;
  }

  private setStatus(status: BackendStatus): void {
    if (status !== this.statusValue) {
      this.statusValue = status;
      this.statusChanged.fire(status);
    }
  }

  private fail(message: string): void {
    this.lastError = message;
    this.setStatus("stopped");
    void showBackendUnavailable(message);
  }

  private async startNow(known?: BackendPython): Promise<void> {
    if (!isTrusted()) {
      traceInfo("Restricted Mode: the backend is not started");
      this.setStatus("restricted");
      return;
    }
    if (this.client !== undefined && this.client.state !== State.Stopped) {
      return;
    }
    this.setStatus("starting");
    this.lastError = undefined;
    try {
      this.python = known ?? (await this.setup.resolve());
    } catch (error) {
      if (error instanceof SetupNeeded) {
        // The offer is not awaited here: an unanswered notification must not hold up the queue.
        this.lastError = error.message;
        this.setStatus("stopped");
        traceWarn(error.message);
        void this.offerSetup(error);
        return;
      }
      if (!(error instanceof BackendUnavailable)) {
        traceError("Choosing the backend's Python failed", error);
      }
      this.fail(errorMessage(error));
      return;
    }
    const client = this.createClient(this.python);
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.fail(`The backend (${this.python.command} -m bgrun.server) failed to start: ${errorMessage(error)}`);
      return;
    }
    try {
      await this.refreshJobsWith(client);
    } catch (error) {
      traceError("Listing the jobs after the backend started failed", error);
    }
  }

  private async offerSetup(needed: SetupNeeded): Promise<void> {
    if (this.offering) {
      return;
    }
    this.offering = true;
    try {
      if (await this.setup.askToSetUp(needed.problem)) {
        await this.setUpAndRestart(needed.basePython);
      }
    } finally {
      this.offering = false;
    }
  }

  private async stopNow(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) {
      return;
    }
    try {
      if (client.state !== State.Stopped) {
        await client.stop(5000);
      }
    } catch (error) {
      traceWarn(`Stopping the backend failed: ${errorMessage(error)}`);
    }
    await client.dispose().catch(() => undefined);
    this.setStatus("stopped");
  }

  private serverLogLevel(): string {
    const level = this.output.logLevel;
    return level === vscode.LogLevel.Trace || level === vscode.LogLevel.Debug ? "DEBUG" : "INFO";
  }

  private createClient(python: BackendPython): LanguageClient {
    const serverOptions: ServerOptions = {
      command: python.command,
      args: ["-m", "bgrun.server", "--log-level", this.serverLogLevel()],
      options: { cwd: this.setup.workingDirectory, env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: serverOutputChannel(this.output),
      traceOutputChannel: this.output,
      // Errors show as notifications that offer the log instead.
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      middleware: {
        workspace: {
          configuration: (params, token, next) => {
            const others = params.items.some((item) => item.section !== SETTINGS_SECTION);
            if (others) {
              return next(params, token);
            }
            return params.items.map((item) => serverSettings(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined));
          },
        },
      },
      errorHandler: {
        error: (error, _message, count): ErrorHandlerResult => {
          traceError(`Connection to the backend failed (${count ?? 1} in a row)`, error);
          return { action: (count ?? 1) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
        },
        closed: (): CloseHandlerResult => this.onClosed(),
      },
      initializationOptions: { client: EXTENSION_NAME },
    };
    const client = new LanguageClient(EXTENSION_NAME, "bgrun backend", serverOptions, clientOptions);
    client.onDidChangeState((event) => {
      traceInfo(`Backend ${stateName(event.oldState)} -> ${stateName(event.newState)}`);
      if (client !== this.client) {
        return;
      }
      if (event.newState === State.Running) {
        this.setStatus("running");
        if (event.oldState === State.Starting && this.restarts.length > 0) {
          this.refreshJobsWith(client).catch((error) => traceError("Listing the jobs after a backend restart failed", error));
        }
      } else if (event.newState === State.Starting) {
        this.setStatus("starting");
      } else {
        this.setStatus("stopped");
      }
    });
    client.onNotification(Methods.jobChanged, (job: Job) => {
      this.jobs.update(job);
    });
    client.onNotification(Methods.jobRemoved, (removed: JobRemoved) => {
      this.jobs.remove(removed.id, removed.logRoot);
    });
    client.onNotification(Methods.driftFound, (drift: DriftFound) => {
      traceWarn(`Periodic check found ${drift.report.drifts.length} drift(s) under ${drift.logRoot}; ${drift.report.repaired} repaired`);
      this.driftFound.fire(drift);
    });
    return client;
  }

  private onClosed(): CloseHandlerResult {
    const now = Date.now();
    this.restarts = [...this.restarts.filter((time) => now - time < RESTART_WINDOW_MS), now];
    if (this.restarts.length <= MAX_RESTARTS) {
      traceWarn(`The backend exited; restarting it (${this.restarts.length} of ${MAX_RESTARTS} restarts in ${RESTART_WINDOW_MS / 60_000} minutes)`);
      return { action: CloseAction.Restart, handled: true };
    }
    const message =
      `The backend exited ${this.restarts.length} times in ${RESTART_WINDOW_MS / 60_000} minutes, so it stays stopped. ` +
      `"bgrun: Show Backend Log" shows its errors; "bgrun: Restart Backend" starts it again.`;
    this.lastError = message;
    setTimeout(() => void showBackendUnavailable(message), 0);
    return { action: CloseAction.DoNotRestart, handled: true };
  }
}
