import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { endMessage, startMessage, shouldNotify, formatDuration, formatJobTime, formatProgress, isQueuedInSlurm, jobRow, sortJobs, statusText } from "../jobFormat";
import { Job } from "../protocol";

const NOW = Date.parse("2026-01-01T12:00:00.000Z");

/** Returns a Slurm job that sbatch accepted at 11:59:00 and that still waits in the Slurm queue. */
function slurmQueued(fields: Partial<Job> = {}): Job {
  return job({
    state: "scheduled",
    backend: "slurm",
    backend_id: "4242",
    started_at: null,
    scheduled_for: "2026-01-01T11:59:00.000Z",
    ...fields,
  });
}

function job(fields: Partial<Job>): Job {
  return {
    id: "1",
    state: "running",
    name: "train_model",
    category: "training",
    command: "python3 train_model.py",
    cwd: "/w",
    log_root: "/w/logs",
    log_path: "/w/logs/training/train_model_20260101_115900.log",
    created_at: "2026-01-01T11:59:00.000Z",
    started_at: "2026-01-01T11:59:01.000Z",
    ...fields,
  };
}

describe("formatDuration", () => {
  test("covers each unit", () => {
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(45.7), "45s");
    assert.equal(formatDuration(185), "3m 05s");
    assert.equal(formatDuration(7620), "2h 07m");
    assert.equal(formatDuration(3 * 86400 + 4 * 3600), "3d 4h");
  });
});

describe("formatJobTime", () => {
  test("running job shows elapsed time", () => {
    assert.equal(formatJobTime(job({}), NOW), "59s");
  });

  test("scheduled job shows countdown", () => {
    assert.equal(formatJobTime(job({ state: "scheduled", started_at: null, scheduled_for: "2026-01-01T12:00:03.000Z" }), NOW), "starts in 3s");
    assert.equal(formatJobTime(job({ state: "scheduled", started_at: null, scheduled_for: "2026-01-01T11:00:00.000Z" }), NOW), "starting");
  });

  test("final job shows duration", () => {
    assert.equal(formatJobTime(job({ state: "succeeded", duration: 12.3 }), NOW), "12s");
  });

  test("Slurm queued job shows its wait", () => {
    assert.equal(formatJobTime(slurmQueued(), NOW), "waiting 1m 00s");
    assert.equal(formatJobTime(slurmQueued({ scheduled_for: "2026-01-01T12:05:00.000Z" }), NOW), "starts in 5m 00s");
  });
});

describe("isQueuedInSlurm", () => {
  test("needs the Slurm job id", () => {
    assert.equal(isQueuedInSlurm(slurmQueued()), true);
    assert.equal(isQueuedInSlurm(slurmQueued({ backend_id: null })), false);
    assert.equal(isQueuedInSlurm(slurmQueued({ state: "running" })), false);
    assert.equal(isQueuedInSlurm(job({ state: "scheduled", backend: "local", backend_id: "7" })), false);
  });
});

describe("formatProgress", () => {
  test("rounds and clamps", () => {
    assert.equal(formatProgress(41.6), "42%");
    assert.equal(formatProgress(140), "100%");
    assert.equal(formatProgress(null), "");
  });
});

describe("jobRow", () => {
  test("running job shows time and progress", () => {
    const row = jobRow(job({ progress: 50 }), NOW);
    assert.equal(row.icon, "sync~spin");
    assert.equal(row.label, "train_model");
    assert.equal(row.description, "#1 · training · running · 59s · 50%");
    assert.equal(row.detail, "python3 train_model.py");
  });

  test("failed job shows its exit code", () => {
    const row = jobRow(job({ state: "failed", duration: 3, exit_code: 2 }), NOW);
    assert.equal(row.icon, "error");
    assert.equal(row.description, "#1 · training · failed · 3s · exit code 2");
  });
});

describe("sortJobs", () => {
  test("puts active jobs first, then newest", () => {
    const jobs = [
      job({ id: "1", state: "succeeded", created_at: "2026-01-01T11:00:00Z" }),
      job({ id: "2", state: "failed", created_at: "2026-01-01T11:30:00Z" }),
      job({ id: "3", state: "scheduled" }),
      job({ id: "4", state: "running" }),
    ];
    assert.deepEqual(sortJobs(jobs).map((item) => item.id), ["4", "3", "2", "1"]);
  });
});

describe("jobRow for Slurm jobs", () => {
  test("queued job shows queue, reason and id", () => {
    const row = jobRow(slurmQueued({ queue_reason: "Resources" }), NOW);
    assert.equal(row.icon, "server-process");
    assert.equal(row.description, "#1 · training · queued in Slurm · waiting 1m 00s · reason: Resources · Slurm job 4242");
  });

  test("queued job without reason yet", () => {
    assert.equal(jobRow(slurmQueued(), NOW).description, "#1 · training · queued in Slurm · waiting 1m 00s · Slurm job 4242");
  });

  test("Slurm job waiting for sbatch is scheduled", () => {
    const row = jobRow(slurmQueued({ backend_id: null, scheduled_for: "2026-01-01T12:00:10.000Z" }), NOW);
    assert.equal(row.icon, "clock");
    assert.equal(row.description, "#1 · training · scheduled · starts in 10s");
  });

  test("running Slurm job names its Slurm id", () => {
    const row = jobRow(job({ backend: "slurm", backend_id: "4242", queue_reason: "Resources" }), NOW);
    assert.equal(row.icon, "sync~spin");
    assert.equal(row.description, "#1 · training · running · 59s · Slurm job 4242");
  });
});

describe("statusText", () => {
  test("idle shows the name only", () => {
    assert.equal(statusText("running", [], NOW).text, "$(history) bgrun");
  });

  test("one running job shows its progress", () => {
    assert.equal(statusText("running", [job({ progress: 42 })], NOW).text, "$(sync~spin) bgrun: 1 running 42%");
  });

  test("counts running and scheduled jobs", () => {
    const jobs = [job({ id: "1" }), job({ id: "2", progress: 10 }), job({ id: "3", state: "scheduled" })];
    assert.equal(statusText("running", jobs, NOW).text, "$(sync~spin) bgrun: 2 running, 1 scheduled");
  });

  test("scheduled only shows a clock", () => {
    assert.equal(statusText("running", [job({ state: "scheduled" })], NOW).text, "$(clock) bgrun: 1 scheduled");
  });

  test("counts the Slurm queue apart", () => {
    const jobs = [job({ id: "1" }), slurmQueued({ id: "2" }), slurmQueued({ id: "3" }), job({ id: "4", state: "scheduled" })];
    assert.equal(statusText("running", jobs, NOW).text, "$(sync~spin) bgrun: 1 running, 2 in Slurm queue, 1 scheduled");
  });

  test("Slurm queue only shows its icon", () => {
    const status = statusText("running", [slurmQueued({ queue_reason: "Priority" })], NOW);
    assert.equal(status.text, "$(server-process) bgrun: 1 in Slurm queue");
    assert.match(status.tooltip, /\*\*bgrun\*\*: 1 waiting in the Slurm queue/);
    const row = "| $(server-process) | train\\_model #1, Slurm job 4242 | training | waiting 1m 00s in the Slurm queue \\(Priority\\) |  |";
    assert.ok(status.tooltip.includes(row), status.tooltip);
  });

  test("tooltip lists active and recent jobs", () => {
    const tooltip = statusText("running", [job({}), job({ id: "2", state: "failed", exit_code: 1, duration: 2 })], NOW).tooltip;
    assert.match(tooltip, /\$\(sync~spin\) \| train\\_model #1 \| training \| 59s/);
    assert.match(tooltip, /Recent jobs:/);
    assert.match(tooltip, /2s \\\(exit code 1\\\)/);
  });

  test("backend states have their own text", () => {
    assert.equal(statusText("stopped", [], NOW).text, "$(error) bgrun: backend stopped");
    assert.equal(statusText("restricted", [], NOW).text, "$(shield) bgrun");
    assert.equal(statusText("starting", [], NOW).text, "$(loading~spin) bgrun");
  });
});

describe("startMessage", () => {
  test("local job starts, Slurm job goes to Slurm", () => {
    const local = job({ state: "scheduled", delay: 1 });
    assert.equal(startMessage(local), "Job #1 train_model (training) starts in 1 s. Log: /w/logs/training/train_model_20260101_115900.log");
    const slurm = job({ state: "scheduled", delay: 0, backend: "slurm" });
    assert.equal(
      startMessage(slurm),
      "Job #1 train_model (training) goes to Slurm in 0 s. Log: /w/logs/training/train_model_20260101_115900.log",
    );
  });
});

describe("endMessage", () => {
  test("names the outcome and the log", () => {
    assert.equal(
      endMessage(job({ state: "failed", exit_code: 1, duration: 65 })),
      "Job #1 train_model failed (exit code 1) after 1m 05s. Log: train_model_20260101_115900.log",
    );
    assert.equal(endMessage(job({ state: "succeeded", duration: 5 })), "Job #1 train_model succeeded after 5s. Log: train_model_20260101_115900.log");
  });
});

describe("shouldNotify", () => {
  test("follows each mode", () => {
    const failed = job({ state: "failed" });
    const lost = job({ state: "lost" });
    const succeeded = job({ state: "succeeded" });
    assert.equal(shouldNotify("always", succeeded), true);
    assert.equal(shouldNotify("onFailure", succeeded), false);
    assert.equal(shouldNotify("onFailure", failed), true);
    assert.equal(shouldNotify("onFailure", lost), true);
    assert.equal(shouldNotify("never", failed), false);
  });
});
