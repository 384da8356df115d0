// Finding a Python that has the backend, and setting up the private environment when none has it.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { traceError, traceInfo, traceWarn } from "./logging";
import { ProcessResult, describeFailure, runProcess } from "./processes";
import {
  PATH_PYTHON,
  PROBE_SCRIPT,
  ProbeResult,
  PythonChoice,
  choosePython,
  describeSource,
  formatVersion,
  isSupportedVersion,
  parseProbe,
  venvPython,
} from "./python";
import { PythonExtension } from "./pythonExtension";
import { extensionSettings } from "./settings";
import { backendFixes, diagnosePipOutput } from "./setupMessages";

const PROBE_TIMEOUT_MS = 30_000;
const VENV_TIMEOUT_MS = 180_000;
const PIP_TIMEOUT_MS = 15 * 60_000;
// File written into the private environment after a successful install. It contains the extension version.
const MARKER_FILE = "bgrun-extension-version";

export interface BackendPython {
  command: string;
  source: PythonChoice["source"];
  probe: ProbeResult;
}

/** Error raised when no Python can run the backend. Its message ends with the numbered fixes. */
export class BackendUnavailable extends Error {}

/** Error raised when the backend needs the private environment, which is not set up yet. */
export class SetupNeeded extends Error {
  constructor(
    readonly problem: string,
    /** Python to create the private environment with, when it is 3.9 or newer. */
    readonly basePython: string,
  ) {
    super(`${problem} The private environment is not set up. ${backendFixes()}`);
  }
}

export interface Probe {
  result?: ProbeResult;
  /** Reason this Python cannot run the backend, or undefined when it can. */
  problem?: string;
}

/** Runs the probe script with `command` and returns whether that Python can run the backend. */
export async function probePython(command: string, cwd: string): Promise<Probe> {
  const run = await runProcess(command, ["-c", PROBE_SCRIPT], { cwd, timeoutMs: PROBE_TIMEOUT_MS });
  const result = parseProbe(run.stdout);
  if (result === undefined) {
    const stderr = run.stderr.trim().split("\n").pop() ?? "";
    return { problem: `${describeFailure(command, run)}${stderr ? ` (${stderr})` : ""}` };
  }
  if (!isSupportedVersion(result.version)) {
    return { result, problem: `is Python ${formatVersion(result.version)}, and the backend needs 3.9 or newer` };
  }
  if (result.bgrun === undefined) {
    return { result, problem: `cannot import the bgrun backend (${result.error ?? "unknown error"})` };
  }
  return { result };
}

export class BackendSetup {
  private readonly storage: string;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly python: PythonExtension,
  ) {
    this.storage = context.globalStorageUri.fsPath;
  }

  get environmentPrefix(): string {
    return path.join(this.storage, "python-env");
  }

  /** Folder the backend and the probes run in, so that no workspace module shadows bgrun. */
  get workingDirectory(): string {
    fs.mkdirSync(this.storage, { recursive: true });
    return this.storage;
  }

  /** Returns the Python chosen by the settings, without checking it. */
  async chosenPython(): Promise<PythonChoice> {
    const settings = extensionSettings();
    const selected = settings.python === "" ? await this.python.selected(vscode.workspace.workspaceFolders?.[0]?.uri) : {};
    return choosePython({ setting: settings.python, extensionInterpreter: selected.executable });
  }

  /**
   * Returns a Python that can run the backend: the chosen one, else the private environment when
   * it is set up. Raises SetupNeeded when the private environment is missing and the choice came
   * from PATH or the Python extension, and BackendUnavailable when bgrun.python is unusable.
   */
  async resolve(): Promise<BackendPython> {
    const choice = await this.chosenPython();
    const probe = await probePython(choice.command, this.workingDirectory);
    if (probe.problem === undefined && probe.result !== undefined) {
      traceInfo(`Backend Python: ${probe.result.executable} (${describeSource(choice.source)}), bgrun ${probe.result.bgrun}`);
      return { command: choice.command, source: choice.source, probe: probe.result };
    }
    const where = `The Python ${describeSource(choice.source)} (${probe.result?.executable ?? choice.command})`;
    traceWarn(`${where} ${probe.problem}`);
    if (choice.source === "setting") {
      throw new BackendUnavailable(`${where} ${probe.problem}. ${backendFixes()}`);
    }
    const existing = await this.privatePython();
    if (existing !== undefined) {
      return existing;
    }
    throw new SetupNeeded(`${where} ${probe.problem}.`, choice.command);
  }

  /** Returns the private environment's Python when it is installed for this version of the extension. */
  async privatePython(): Promise<BackendPython | undefined> {
    const interpreter = venvPython(this.environmentPrefix);
    if (!fs.existsSync(interpreter)) {
      return undefined;
    }
    const marker = this.readMarker();
    if (marker !== this.context.extension.packageJSON.version) {
      traceInfo(`The private environment has the backend of extension version ${marker ?? "unknown"}; it will be updated`);
      return undefined;
    }
    const probe = await probePython(interpreter, this.workingDirectory);
    if (probe.problem !== undefined || probe.result === undefined) {
      traceWarn(`The private environment at ${this.environmentPrefix} is broken: ${probe.problem}`);
      return undefined;
    }
    traceInfo(`Backend Python: ${interpreter} (bgrun's private environment), bgrun ${probe.result.bgrun}`);
    return { command: interpreter, source: "privateEnvironment", probe: probe.result };
  }

  private readMarker(): string | undefined {
    try {
      return fs.readFileSync(path.join(this.environmentPrefix, MARKER_FILE), "utf8").trim();
    } catch {
      return undefined;
    }
  }

  /** Asks whether to set up the private environment after `problem`; returns true when the user agrees. */
  async askToSetUp(problem: string): Promise<boolean> {
    const setUp = "Set Up";
    const choose = "Choose Python";
    const choice = await vscode.window.showWarningMessage(
      `${problem} Set up a private environment for the bgrun backend? bgrun runs "python -m venv" and "pip install" ` +
        `(with your pip configuration) in this extension's storage folder.`,
      setUp,
      choose,
    );
    if (choice === choose) {
      void vscode.commands.executeCommand("workbench.action.openSettings", "bgrun.python");
    }
    return choice === setUp;
  }

  /** Returns the folder of the backend's sources inside the installed extension. */
  private backendSources(): string {
    const packaged = path.join(this.context.extensionPath, "out", "pyserver");
    if (fs.existsSync(path.join(packaged, "pyproject.toml"))) {
      return packaged;
    }
    // Running from a clone (the extension development host): use the repository's sources.
    return path.join(this.context.extensionPath, "pyserver");
  }

  /**
   * Creates the private environment with `basePython` (python3 on PATH when that one is unusable)
   * and installs the backend with its server extra, under a progress notification.
   */
  async setUp(basePython?: string): Promise<BackendPython> {
    const base = await this.pickBase(basePython);
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "bgrun: setting up the backend's Python environment", cancellable: true },
      async (progress, token) => {
        const prefix = this.environmentPrefix;
        fs.rmSync(prefix, { recursive: true, force: true });
        progress.report({ message: `creating a virtual environment with ${base}` });
        traceInfo(`Creating the private environment: ${base} -m venv ${prefix}`);
        const venv = await runProcess(base, ["-m", "venv", prefix], {
          cwd: this.workingDirectory,
          timeoutMs: VENV_TIMEOUT_MS,
          cancel: token,
          onOutput: (text) => traceInfo(`venv: ${text.trimEnd()}`),
        });
        this.failIfCancelled(token);
        if (venv.code !== 0) {
          throw new BackendUnavailable(`${this.venvFailure(base, venv)} ${backendFixes()}`);
        }

        progress.report({ message: "installing the bgrun backend with pip (this can take a minute)" });
        const sources = this.copySources();
        const interpreter = venvPython(prefix);
        const args = ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", `${sources}[server]`];
        traceInfo(`Installing the backend: ${interpreter} ${args.join(" ")}`);
        const pip = await runProcess(interpreter, args, {
          cwd: this.workingDirectory,
          timeoutMs: PIP_TIMEOUT_MS,
          cancel: token,
          onOutput: (text) => {
            for (const line of text.split("\n")) {
              if (line.trim() !== "") {
                traceInfo(`pip: ${line.trimEnd()}`);
              }
            }
          },
        }).finally(() => fs.rmSync(sources, { recursive: true, force: true }));
        this.failIfCancelled(token);
        if (pip.code !== 0) {
          const diagnosis = diagnosePipOutput(pip.stdout + pip.stderr);
          throw new BackendUnavailable(`Installing the bgrun backend failed: ${pip.timedOut ? "pip timed out. " : ""}${diagnosis.summary} ${backendFixes()}`);
        }
        fs.writeFileSync(path.join(prefix, MARKER_FILE), `${this.context.extension.packageJSON.version}\n`);
        const ready = await this.privatePython();
        if (ready === undefined) {
          throw new BackendUnavailable(`pip installed the backend, but ${interpreter} still cannot import it. ${backendFixes()}`);
        }
        traceInfo(`The private environment is ready: ${interpreter}`);
        return ready;
      },
    );
  }

  private failIfCancelled(token: vscode.CancellationToken): void {
    if (token.isCancellationRequested) {
      throw new BackendUnavailable(`Setting up the private environment was cancelled. ${backendFixes()}`);
    }
  }

  private async pickBase(preferred: string | undefined): Promise<string> {
    for (const candidate of [preferred, PATH_PYTHON]) {
      if (candidate === undefined) {
        continue;
      }
      const probe = await probePython(candidate, this.workingDirectory);
      if (probe.result !== undefined && isSupportedVersion(probe.result.version)) {
        return probe.result.executable || candidate;
      }
    }
    throw new BackendUnavailable(`No Python 3.9 or newer was found to create the private environment. ${backendFixes()}`);
  }

  private venvFailure(base: string, result: ProcessResult): string {
    const output = `${result.stdout}\n${result.stderr}`;
    if (/ensurepip is not available|No module named venv/i.test(output)) {
      return `${base} cannot create virtual environments: its venv module or ensurepip is missing (on Debian and Ubuntu, install python3-venv).`;
    }
    return `Creating the private environment failed: ${describeFailure(`${base} -m venv`, result)}.`;
  }

  /** Copies the bundled sources to a scratch folder, because pip builds in the source tree. */
  private copySources(): string {
    const target = path.join(os.tmpdir(), `bgrun-backend-${process.pid}-${Date.now()}`);
    fs.cpSync(this.backendSources(), target, {
      recursive: true,
      filter: (source) => !/(__pycache__|\.egg-info|\.pyc)$/.test(source),
    });
    return target;
  }
}

/** Shows the error of a backend that cannot start, with buttons for the usual fixes. */
export async function showBackendUnavailable(message: string): Promise<void> {
  traceError(message);
  const settings = "Open Settings";
  const setUp = "Set Up Private Environment";
  const showLog = "Show Backend Log";
  const choice = await vscode.window.showErrorMessage(`bgrun could not start its backend. ${message}`, settings, setUp, showLog);
  if (choice === settings) {
    await vscode.commands.executeCommand("workbench.action.openSettings", "bgrun.python");
  } else if (choice === setUp) {
    await vscode.commands.executeCommand("bgrun.setupEnvironment");
  } else if (choice === showLog) {
    await vscode.commands.executeCommand("bgrun.showBackendLog");
  }
}
