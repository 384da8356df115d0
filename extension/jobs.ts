// The cache of jobs the server reported, fed by bgrun/list results and bgrun/jobChanged
// notifications, without the VS Code API.

import { Job, isActive, isFinal, jobKey } from "./protocol";

export interface Disposable {
  dispose(): void;
}

/** A minimal event emitter with the shape of vscode.EventEmitter's `event`. */
export class Emitter<T> {
  private listeners = new Set<(value: T) => void>();

  readonly event = (listener: (value: T) => void): Disposable => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      listener(value);
    }
  }

  dispose(): void {
    this.listeners.clear();
  }
}

/**
 * Returns true when `next` shows a job that ended since this window last saw it. That is a
 * final job that was active before, or a final job new to the cache that was created after
 * `since` (epoch milliseconds). Jobs that ended before the window opened stay quiet.
 */
export function hasEnded(previous: Job | undefined, next: Job, since: number): boolean {
  if (!isFinal(next.state)) {
    return false;
  }
  if (previous !== undefined) {
    return isActive(previous.state);
  }
  const created = Date.parse(next.created_at ?? "");
  return !Number.isNaN(created) && created >= since;
}

export class JobCache {
  private readonly jobs = new Map<string, Job>();
  private readonly changed = new Emitter<void>();
  private readonly ended = new Emitter<Job>();

  /** Fires after any job was added, changed or removed. */
  readonly onDidChange = this.changed.event;
  /** Fires once per job that ended while this window watched it. */
  readonly onDidEnd = this.ended.event;

  /** `since`: jobs created before this time (epoch milliseconds) never fire onDidEnd when first seen. */
  constructor(private readonly since: number) {}

  all(): Job[] {
    return [...this.jobs.values()];
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Returns the job with this id, under `logRoot` when given, or undefined when it is missing or ambiguous. */
  find(id: string, logRoot?: string): Job | undefined {
    if (logRoot !== undefined) {
      return this.jobs.get(jobKey({ id, logRoot }));
    }
    const matches = this.all().filter((job) => job.id === id);
    return matches.length === 1 ? matches[0] : undefined;
  }

  /** Returns the job whose log file is `logPath`. */
  findByLog(logPath: string): Job | undefined {
    return this.all().find((job) => job.log_path === logPath);
  }

  /** Stores a job from a notification or a request result. Returns false when the cache has a newer revision. */
  update(job: Job): boolean {
    const changed = this.apply(job);
    if (changed) {
      this.changed.fire();
    }
    return changed;
  }

  /**
   * Replaces the cache with a complete listing: jobs missing from it are dropped, except active
   * ones under log roots the listing does not cover.
   */
  replaceAll(jobs: readonly Job[]): void {
    const listed = new Set(jobs.map(jobKey));
    const roots = new Set(jobs.map((job) => job.log_root));
    for (const [key, job] of this.jobs) {
      if (!listed.has(key) && (roots.has(job.log_root) || !isActive(job.state))) {
        this.jobs.delete(key);
      }
    }
    for (const job of jobs) {
      this.apply(job);
    }
    this.changed.fire();
  }

  remove(id: string, logRoot: string): void {
    if (this.jobs.delete(jobKey({ id, logRoot }))) {
      this.changed.fire();
    }
  }

  dispose(): void {
    this.changed.dispose();
    this.ended.dispose();
  }

  private apply(job: Job): boolean {
    const key = jobKey(job);
    const previous = this.jobs.get(key);
    if (previous !== undefined && (previous.revision ?? 0) > (job.revision ?? 0)) {
      return false;
    }
    this.jobs.set(key, job);
    if (hasEnded(previous, job, this.since)) {
      this.ended.fire(job);
    }
    return true;
  }
}
