// Types and method names of the bgrun language server's custom requests and notifications.
// The job object follows docs/job-schema.md, and the params follow pyserver/bgrun/server/params.py.

export type JobState = "scheduled" | "running" | "succeeded" | "failed" | "cancelled" | "lost";

export const ACTIVE_STATES: readonly JobState[] = ["scheduled", "running"];
export const FINAL_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled", "lost"];

/** A job as the server sends it, without the fields this extension does not read. */
export interface Job {
  id: string;
  state: JobState;
  reason?: string | null;
  backend?: string;
  /** The Slurm job id of the latest attempt of a `slurm` job, once sbatch accepted it. */
  backend_id?: string | null;
  /** Slurm's pending reason while a `slurm` job waits in the Slurm queue; sent by the server only. */
  queue_reason?: string | null;
  name: string;
  category: string;
  command: string;
  argv?: string[] | null;
  cwd: string;
  log_root: string;
  log_path: string;
  log_missing?: boolean;
  environment?: string | null;
  env_file?: string | null;
  delay?: number;
  created_at?: string;
  scheduled_for?: string | null;
  started_at?: string | null;
  ended_at?: string | null;
  duration?: number | null;
  exit_code?: number | null;
  signal?: number | null;
  retries?: number;
  attempt?: number;
  progress?: number | null;
  revision?: number;
}

export interface RunParams {
  command?: string;
  argv?: string[];
  cwd?: string;
  category?: string;
  name?: string;
  delay?: number;
  retries?: number;
  env?: Record<string, string>;
  envFile?: string;
  environment?: string;
}

export interface Preview {
  name: string;
  category: string;
  log_path: string;
  log_root: string;
  cwd: string;
  delay: number;
  command: string;
  environment: string | null;
}

export interface JobRef {
  id: string;
  logRoot?: string;
}

export interface ListParams {
  states?: JobState[];
  category?: string;
  folder?: string;
  logRoot?: string;
  limit?: number;
}

export interface Drift {
  kind: string;
  job: string | null;
  detail: string;
  repaired: boolean;
}

export interface CheckReport {
  log_root: string;
  repair: boolean;
  consistent: boolean;
  jobs: number;
  record_files: number;
  log_files: number;
  counts: Record<string, number>;
  repaired: number;
  drifts: Drift[];
  seconds: number;
  report_path: string | null;
}

export interface CheckResult {
  consistent: boolean;
  reports: { logRoot: string; consistent: boolean; report: CheckReport }[];
}

export interface JobRemoved {
  id: string;
  logRoot: string;
}

export interface DriftFound {
  logRoot: string;
  report: CheckReport;
}

export const Methods = {
  run: "bgrun/run",
  preview: "bgrun/preview",
  list: "bgrun/list",
  get: "bgrun/get",
  stop: "bgrun/stop",
  rerun: "bgrun/rerun",
  remove: "bgrun/remove",
  check: "bgrun/check",
  jobChanged: "bgrun/jobChanged",
  jobRemoved: "bgrun/jobRemoved",
  driftFound: "bgrun/driftFound",
} as const;

export function isActive(state: JobState): boolean {
  return ACTIVE_STATES.includes(state);
}

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.includes(state);
}

/** Returns the cache key of a job: ids are unique only under one log root. */
export function jobKey(job: { id: string; log_root?: string; logRoot?: string }): string {
  return `${job.log_root ?? job.logRoot ?? ""}\u0000${job.id}`;
}

/** Returns the params that name one job to the server, with its log root so the id is unambiguous. */
export function jobRef(job: Job): JobRef {
  return job.log_root ? { id: job.id, logRoot: job.log_root } : { id: job.id };
}
