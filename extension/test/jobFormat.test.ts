import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { endMessage, shouldNotify, formatDuration, formatJobTime, formatProgress, jobRow, sortJobs, statusText } from "../jobFormat";
import { Job } from "../protocol";

const NOW = Date.parse("2026-01-01T12:00:00.000Z");

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

describe("statusText", () => {
  test("idle shows the name only", () => {
    assert.equal(statusText("running", [], NOW).text, "$(history) bgrun");
  });

  test("one running job shows its progress", () => {
    assert.equal(statusText("running", [job({ progress: 42 })], NOW).text, "$(sync~spin) bgrun: 1 running 42%");
  });

  test("counts running and queued jobs", () => {
    const jobs = [job({ id: "1" }), job({ id: "2", progress: 10 }), job({ id: "3", state: "scheduled" })];
    assert.equal(statusText("running", jobs, NOW).text, "$(sync~spin) bgrun: 2 running, 1 queued");
  });

  test("queued only shows a clock", () => {
    assert.equal(statusText("running", [job({ state: "scheduled" })], NOW).text, "$(clock) bgrun: 1 queued");
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
