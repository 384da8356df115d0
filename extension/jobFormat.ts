// Text of the status bar item, its tooltip, the job list and the tree, without the VS Code API.

import * as path from "node:path";
import { Job, JobState } from "./protocol";

/** Codicon of each state, as `$(name)` in labels and as a ThemeIcon id in the tree. */
export const STATE_ICONS: Readonly<Record<JobState, string>> = {
  scheduled: "clock",
  running: "sync~spin",
  succeeded: "pass",
  failed: "error",
  cancelled: "circle-slash",
  lost: "question",
};

/** Codicon of a job that sbatch accepted and that waits in the Slurm queue. */
export const SLURM_QUEUED_ICON = "server-process";

/** Theme colour of each state's icon in the tree, where one helps. */
export const STATE_COLORS: Readonly<Partial<Record<JobState, string>>> = {
  succeeded: "testing.iconPassed",
  failed: "testing.iconFailed",
  lost: "list.warningForeground",
};

/** Formats seconds for people: "45s", "3m 05s", "2h 07m", "3d 4h". */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) {
    return `${whole}s`;
  }
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) {
    return `${minutes}m ${String(whole % 60).padStart(2, "0")}s`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    return `${hours}h ${String(minutes % 60).padStart(2, "0")}m`;
  }
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

function secondsBetween(start: string | null | undefined, end: number): number | undefined {
  if (!start) {
    return undefined;
  }
  const started = Date.parse(start);
  return Number.isNaN(started) ? undefined : (end - started) / 1000;
}

/** Returns true for a Slurm job that sbatch accepted and whose step has not started on a node. */
export function isQueuedInSlurm(job: Job): boolean {
  return job.backend === "slurm" && job.state === "scheduled" && Boolean(job.backend_id);
}

/** Returns the codicon of the job's row: its state's, or the Slurm queue's. */
export function jobIcon(job: Job): string {
  return isQueuedInSlurm(job) ? SLURM_QUEUED_ICON : (STATE_ICONS[job.state] ?? "question");
}

/** Returns the state as the list shows it: "queued in Slurm" for a job in the Slurm queue. */
export function stateLabel(job: Job): string {
  return isQueuedInSlurm(job) ? "queued in Slurm" : job.state;
}

/**
 * Returns the job's time as the list shows it: the countdown of a scheduled job, the time a
 * due job has waited in the Slurm queue, the elapsed time of a running one, or the duration of a
 * final one. Returns "" when the job has no such time.
 */
export function formatJobTime(job: Job, now: number): string {
  if (job.state === "scheduled") {
    const remaining = job.scheduled_for ? -(secondsBetween(job.scheduled_for, now) ?? 0) : undefined;
    if (remaining !== undefined && remaining > 0) {
      return `starts in ${formatDuration(Math.ceil(remaining))}`;
    }
    if (isQueuedInSlurm(job)) {
      return remaining === undefined ? "waiting" : `waiting ${formatDuration(-remaining)}`;
    }
    return "starting";
  }
  if (job.state === "running") {
    const elapsed = secondsBetween(job.started_at, now);
    return elapsed === undefined ? "" : formatDuration(elapsed);
  }
  if (typeof job.duration === "number") {
    return formatDuration(job.duration);
  }
  return "";
}

export function formatProgress(progress: number | null | undefined): string {
  if (typeof progress !== "number" || !Number.isFinite(progress)) {
    return "";
  }
  return `${Math.round(Math.min(100, Math.max(0, progress)))}%`;
}

/** Returns how a final job ended: "exit code 1", "killed by signal 9", or the state. */
export function formatOutcome(job: Job): string {
  if (typeof job.exit_code === "number") {
    return `exit code ${job.exit_code}`;
  }
  if (typeof job.signal === "number") {
    return `killed by signal ${job.signal}`;
  }
  return job.state;
}

export function logFileName(job: Job): string {
  return path.basename(job.log_path);
}

/** One row of the job list, shared by the quick pick and the tree. */
export interface JobRow {
  icon: string;
  label: string;
  description: string;
  detail: string;
}

/** Returns "Slurm job 1234" for a job that went to Slurm, else "". */
export function slurmLabel(job: Job): string {
  return job.backend === "slurm" && job.backend_id ? `Slurm job ${job.backend_id}` : "";
}

export function jobRow(job: Job, now: number): JobRow {
  const parts = [job.category, stateLabel(job)];
  const time = formatJobTime(job, now);
  if (time !== "") {
    parts.push(time);
  }
  if (isQueuedInSlurm(job) && job.queue_reason) {
    parts.push(`reason: ${job.queue_reason}`);
  }
  const progress = job.state === "running" ? formatProgress(job.progress) : "";
  if (progress !== "") {
    parts.push(progress);
  }
  if (job.state === "failed") {
    parts.push(formatOutcome(job));
  }
  const slurm = slurmLabel(job);
  if (slurm !== "") {
    parts.push(slurm);
  }
  return {
    icon: jobIcon(job),
    label: job.name,
    description: `#${job.id} · ${parts.join(" · ")}`,
    detail: job.command,
  };
}

/** Orders jobs for display: active ones first, then newest first by creation time and id. */
export function sortJobs(jobs: Iterable<Job>): Job[] {
  const rank = (job: Job) => {
    if (job.state === "running") {
      return 0;
    }
    return job.state === "scheduled" ? 1 : 2;
  };
  const created = (job: Job) => Date.parse(job.created_at ?? "") || 0;
  return [...jobs].sort(
    (a, b) => rank(a) - rank(b) || created(b) - created(a) || Number(b.id) - Number(a.id),
  );
}

export type BackendStatus = "starting" | "running" | "stopped" | "restricted" | "setup";

export interface StatusText {
  text: string;
  tooltip: string;
}

// Characters that Markdown would read as syntax inside a table cell.
const MARKDOWN_SPECIAL = /[\\`*_{}[\]()|<>~]/g;

export function escapeMarkdown(text: string): string {
  return text.replace(MARKDOWN_SPECIAL, (character) => `\\${character}`);
}

// Final jobs the tooltip lists below the active ones.
const RECENT_IN_TOOLTIP = 5;

function tooltipTable(jobs: readonly Job[], now: number): string[] {
  const lines = ["| | job | category | time | progress |", "|---|---|---|---|---|"];
  for (const job of jobs) {
    const progress = job.state === "running" ? formatProgress(job.progress) : "";
    let note = job.state === "failed" ? ` (${formatOutcome(job)})` : "";
    if (isQueuedInSlurm(job)) {
      note = ` in the Slurm queue${job.queue_reason ? ` (${job.queue_reason})` : ""}`;
    }
    const slurm = slurmLabel(job);
    const name = slurm === "" ? `${job.name} #${job.id}` : `${job.name} #${job.id}, ${slurm}`;
    lines.push(
      `| $(${jobIcon(job)}) | ${escapeMarkdown(name)} | ${escapeMarkdown(job.category)} | ` +
        `${escapeMarkdown(formatJobTime(job, now) + note)} | ${progress} |`,
    );
  }
  return lines;
}

/** Returns the status bar text and its Markdown tooltip for the backend status and the known jobs. */
export function statusText(backend: BackendStatus, jobs: readonly Job[], now: number): StatusText {
  if (backend === "restricted") {
    return {
      text: "$(shield) bgrun",
      tooltip: "**bgrun** runs no job in Restricted Mode, because a job executes code from this workspace. Trust the workspace to run jobs.",
    };
  }
  if (backend === "starting") {
    return { text: "$(loading~spin) bgrun", tooltip: "**bgrun**: the backend is starting." };
  }
  if (backend === "setup") {
    return { text: "$(loading~spin) bgrun: setting up", tooltip: "**bgrun**: setting up the private Python environment of the backend." };
  }
  if (backend === "stopped") {
    return {
      text: "$(error) bgrun: backend stopped",
      tooltip: "**bgrun**: the backend is not running. Click to see why; run **bgrun: Restart Backend** to start it again.",
    };
  }
  const sorted = sortJobs(jobs);
  const running = sorted.filter((job) => job.state === "running");
  const inSlurmQueue = sorted.filter(isQueuedInSlurm);
  const scheduled = sorted.filter((job) => job.state === "scheduled" && !isQueuedInSlurm(job));
  const counts: string[] = [];
  const summary: string[] = [];
  if (running.length > 0) {
    const progress = running.length === 1 ? formatProgress(running[0].progress) : "";
    counts.push(`${running.length} running${progress ? ` ${progress}` : ""}`);
    summary.push(counts[counts.length - 1]);
  }
  if (inSlurmQueue.length > 0) {
    counts.push(`${inSlurmQueue.length} in Slurm queue`);
    summary.push(`${inSlurmQueue.length} waiting in the Slurm queue`);
  }
  if (scheduled.length > 0) {
    counts.push(`${scheduled.length} scheduled`);
    summary.push(`${scheduled.length} waiting for ${scheduled.length === 1 ? "its" : "their"} start time`);
  }
  let icon = "$(history)";
  if (running.length > 0) {
    icon = "$(sync~spin)";
  } else if (inSlurmQueue.length > 0) {
    icon = `$(${SLURM_QUEUED_ICON})`;
  } else if (scheduled.length > 0) {
    icon = "$(clock)";
  }
  const text = counts.length > 0 ? `${icon} bgrun: ${counts.join(", ")}` : `${icon} bgrun`;

  const active = [...running, ...inSlurmQueue, ...scheduled];
  const recent = sorted.filter((job) => job.state !== "running" && job.state !== "scheduled").slice(0, RECENT_IN_TOOLTIP);
  const tooltip: string[] = [`**bgrun**: ${summary.length > 0 ? summary.join(", ") : "no job running"}`, ""];
  if (active.length > 0) {
    tooltip.push(...tooltipTable(active, now), "");
  }
  if (recent.length > 0) {
    tooltip.push("Recent jobs:", "", ...tooltipTable(recent, now), "");
  }
  tooltip.push("Click to show the background jobs.");
  return { text, tooltip: tooltip.join("\n") };
}

/** Returns the message shown when a job was submitted: when it starts, or goes to Slurm, and its log. */
export function startMessage(job: Job): string {
  const delay = typeof job.delay === "number" ? `${job.delay} s` : "a moment";
  const when = job.backend === "slurm" ? `goes to Slurm in ${delay}` : `starts in ${delay}`;
  return `Job #${job.id} ${job.name} (${job.category}) ${when}. Log: ${job.log_path}`;
}

/** Returns the message shown when a job ends. */
export function endMessage(job: Job): string {
  const what = `Job #${job.id} ${job.name}`;
  const duration = typeof job.duration === "number" ? ` after ${formatDuration(job.duration)}` : "";
  const log = logFileName(job);
  switch (job.state) {
    case "succeeded":
      return `${what} succeeded${duration}. Log: ${log}`;
    case "failed":
      return `${what} failed (${formatOutcome(job)})${duration}${job.reason ? `: ${job.reason}` : ""}. Log: ${log}`;
    case "cancelled":
      return `${what} was stopped${duration}. Log: ${log}`;
    case "lost":
      return `${what} was lost: its process ended without recording an outcome. Log: ${log}`;
    default:
      return `${what} is ${job.state}. Log: ${log}`;
  }
}

export type NotificationMode = "always" | "onFailure" | "never";

/** Returns true when a job that ended in `job.state` gets a notification under `mode` (setting bgrun.notifications). */
export function shouldNotify(mode: NotificationMode, job: Job): boolean {
  if (mode === "never") {
    return false;
  }
  if (mode === "onFailure") {
    return job.state === "failed" || job.state === "lost";
  }
  return true;
}
