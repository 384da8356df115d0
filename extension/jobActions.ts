// Actions on one job: open its log, stop, rerun, copy its command, remove it. Commands receive
// a job from the tree, the job list, a notification or another extension. Without one, they
// ask for it with a quick pick.

import * as vscode from "vscode";
import { jobRow, sortJobs, startMessage } from "./jobFormat";
import { JobCache } from "./jobs";
import { traceError, traceInfo } from "./logging";
import { LogViewProvider, logPathOf } from "./logView";
import { Job, JobRef, Methods, isActive, isFinal, jobRef } from "./protocol";
import { Backend } from "./server";
import { requireTrust, showError } from "./vscodeapi";

/** An argument that names a job: a Job, a tree item holding one, or {id, logRoot?}. */
export type JobArgument = Job | { job: Job } | JobRef | undefined;

export type JobFilter = (job: Job) => boolean;

export class JobActions {
  constructor(
    private readonly backend: Backend,
    private readonly jobs: JobCache,
    private readonly logView: LogViewProvider,
  ) {}

  /** Returns the job an argument names, asking with a quick pick of the jobs that pass `filter` when it names none. */
  async resolve(argument: unknown, filter: JobFilter, placeHolder: string): Promise<Job | undefined> {
    const named = this.fromArgument(argument);
    if (named !== undefined) {
      return named;
    }
    if (argument !== undefined && argument !== null && !(argument instanceof vscode.Uri)) {
      const id = (argument as JobRef).id;
      if (typeof id === "string") {
        return this.backend.request<Job>(Methods.get, argument);
      }
    }
    return this.pick(filter, placeHolder);
  }

  private fromArgument(argument: unknown): Job | undefined {
    if (argument === undefined || argument === null || typeof argument !== "object") {
      return undefined;
    }
    const candidate = "job" in argument ? (argument as { job: Job }).job : (argument as Job);
    if (typeof candidate?.id === "string" && typeof candidate.log_path === "string") {
      // Prefer the cache: it has the latest state of the job.
      return this.jobs.find(candidate.id, candidate.log_root) ?? candidate;
    }
    return undefined;
  }

  async pick(filter: JobFilter, placeHolder: string): Promise<Job | undefined> {
    const now = Date.now();
    const candidates = sortJobs(this.jobs.all().filter(filter));
    if (candidates.length === 0) {
      void vscode.window.showInformationMessage(`bgrun: no job to choose from. ${placeHolder}`);
      return undefined;
    }
    const items = candidates.map((job) => {
      const row = jobRow(job, now);
      return { label: `$(${row.icon}) ${row.label}`, description: row.description, detail: row.detail, job };
    });
    const chosen = await vscode.window.showQuickPick(items, { placeHolder, matchOnDescription: true, matchOnDetail: true });
    return chosen?.job;
  }

  async openLog(job: Job, options: vscode.TextDocumentShowOptions = {}): Promise<void> {
    await this.logView.open(job.log_path, options);
  }

  async openRawLog(job: Job): Promise<void> {
    await vscode.window.showTextDocument(vscode.Uri.file(job.log_path), { preview: false });
  }

  async stop(job: Job): Promise<Job | undefined> {
    if (!requireTrust("bgrun: Stop Job")) {
      return undefined;
    }
    if (!isActive(job.state)) {
      void vscode.window.showInformationMessage(`Job #${job.id} ${job.name} is already ${job.state}.`);
      return job;
    }
    traceInfo(`Stopping job ${job.id}`);
    try {
      const stopped = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `bgrun: stopping job #${job.id}` },
        () => this.backend.request<Job>(Methods.stop, jobRef(job)),
      );
      this.jobs.update(stopped);
      return stopped;
    } catch (error) {
      traceError(`Stopping job ${job.id} failed`, error);
      void showError(`bgrun: stopping job #${job.id} ${job.name} failed: ${(error as Error).message}`);
      return undefined;
    }
  }

  async rerun(job: Job): Promise<Job | undefined> {
    if (!requireTrust("bgrun: Rerun Job")) {
      return undefined;
    }
    traceInfo(`Rerunning job ${job.id}`);
    try {
      const started = await this.backend.request<Job>(Methods.rerun, jobRef(job));
      this.jobs.update(started);
      void announceStart(started, this);
      return started;
    } catch (error) {
      traceError(`Rerunning job ${job.id} failed`, error);
      void showError(`bgrun: rerunning job #${job.id} ${job.name} failed: ${(error as Error).message}`);
      return undefined;
    }
  }

  async remove(job: Job): Promise<boolean> {
    if (!requireTrust("bgrun: Remove Job")) {
      return false;
    }
    if (!isFinal(job.state)) {
      void vscode.window.showWarningMessage(`Job #${job.id} ${job.name} is ${job.state}; stop it before removing it.`);
      return false;
    }
    const remove = "Remove";
    const answer = await vscode.window.showWarningMessage(
      `Remove job #${job.id} ${job.name} from the job store and delete its log ${job.log_path}?`,
      { modal: true },
      remove,
    );
    if (answer !== remove) {
      return false;
    }
    try {
      await this.backend.request<Job>(Methods.remove, jobRef(job));
      this.jobs.remove(job.id, job.log_root);
      return true;
    } catch (error) {
      traceError(`Removing job ${job.id} failed`, error);
      void showError(`bgrun: removing job #${job.id} ${job.name} failed: ${(error as Error).message}`);
      return false;
    }
  }

  async copyCommand(job: Job): Promise<void> {
    await vscode.env.clipboard.writeText(job.command);
    void vscode.window.setStatusBarMessage(`bgrun: copied the command of job #${job.id}`, 3000);
  }

  /** Offers the actions that fit the job's state, and runs the one chosen. */
  async offerActions(job: Job): Promise<void> {
    const current = this.jobs.find(job.id, job.log_root) ?? job;
    const actions: { label: string; run: () => Promise<unknown> }[] = [
      { label: "$(output) Open Log", run: () => this.openLog(current) },
      { label: "$(go-to-file) Open Log File (raw)", run: () => this.openRawLog(current) },
    ];
    if (isActive(current.state)) {
      actions.push({ label: "$(debug-stop) Stop", run: () => this.stop(current) });
    }
    actions.push({ label: "$(debug-restart) Rerun", run: () => this.rerun(current) });
    actions.push({ label: "$(copy) Copy Command", run: () => this.copyCommand(current) });
    if (isFinal(current.state)) {
      actions.push({ label: "$(trash) Remove", run: () => this.remove(current) });
    }
    const row = jobRow(current, Date.now());
    const chosen = await vscode.window.showQuickPick(actions, { placeHolder: `${row.label} ${row.description}`, title: current.command });
    await chosen?.run();
  }
}

/** Shows the notification that a job was submitted, and runs the button the user clicks. Callers do not await it. */
export async function announceStart(job: Job, actions: JobActions): Promise<void> {
  const openLog = "Open Log";
  const stop = "Stop";
  const choice = await vscode.window.showInformationMessage(
    startMessage(job),
    openLog,
    stop,
  );
  if (choice === openLog) {
    await actions.openLog(job);
  } else if (choice === stop) {
    await actions.stop(job);
  }
}

/** Returns the log path a command argument names: a bgrun-log: or file: URI, or a job. */
export function logPathFromArgument(argument: unknown): string | undefined {
  if (argument instanceof vscode.Uri) {
    return logPathOf(argument);
  }
  return undefined;
}
