import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { JobCache, hasEnded } from "../jobs";
import { Job } from "../protocol";

const SINCE = Date.parse("2026-01-01T12:00:00Z");

function job(fields: Partial<Job>): Job {
  return {
    id: "1",
    state: "running",
    name: "train",
    category: "training",
    command: "python3 train.py",
    cwd: "/w",
    log_root: "/w/logs",
    log_path: "/w/logs/training/train_20260101_120001.log",
    created_at: "2026-01-01T12:00:01Z",
    revision: 1,
    ...fields,
  };
}

describe("hasEnded", () => {
  test("active to final ends", () => {
    assert.equal(hasEnded(job({}), job({ state: "succeeded" }), SINCE), true);
  });

  test("final to final does not end again", () => {
    assert.equal(hasEnded(job({ state: "failed" }), job({ state: "failed" }), SINCE), false);
  });

  test("new final job ends only when created after since", () => {
    assert.equal(hasEnded(undefined, job({ state: "failed" }), SINCE), true);
    assert.equal(hasEnded(undefined, job({ state: "failed", created_at: "2025-12-31T00:00:00Z" }), SINCE), false);
  });
});

describe("JobCache", () => {
  test("fires onDidEnd once per ending", () => {
    const cache = new JobCache(SINCE);
    const ended: string[] = [];
    cache.onDidEnd((item) => ended.push(item.id));
    cache.update(job({ revision: 1 }));
    cache.update(job({ state: "succeeded", revision: 2 }));
    cache.update(job({ state: "succeeded", revision: 2 }));
    assert.deepEqual(ended, ["1"]);
  });

  test("ignores an older revision", () => {
    const cache = new JobCache(SINCE);
    cache.update(job({ state: "succeeded", revision: 3 }));
    assert.equal(cache.update(job({ state: "running", revision: 2 })), false);
    assert.equal(cache.find("1")?.state, "succeeded");
  });

  test("keys jobs by log root and id", () => {
    const cache = new JobCache(SINCE);
    cache.update(job({ log_root: "/a" }));
    cache.update(job({ log_root: "/b" }));
    assert.equal(cache.size, 2);
    assert.equal(cache.find("1"), undefined);
    assert.equal(cache.find("1", "/b")?.log_root, "/b");
  });

  test("replaceAll drops jobs missing from the listing", () => {
    const cache = new JobCache(SINCE);
    cache.update(job({ id: "1", state: "succeeded" }));
    cache.update(job({ id: "2", state: "running", log_root: "/other" }));
    cache.replaceAll([job({ id: "3" })]);
    assert.deepEqual(cache.all().map((item) => item.id).sort(), ["2", "3"]);
  });

  test("replaceAll reports jobs that ended meanwhile", () => {
    const cache = new JobCache(SINCE);
    const ended: string[] = [];
    cache.onDidEnd((item) => ended.push(item.id));
    cache.update(job({ id: "5" }));
    cache.replaceAll([job({ id: "5", state: "failed", revision: 4 })]);
    assert.deepEqual(ended, ["5"]);
  });

  test("remove fires a change", () => {
    const cache = new JobCache(SINCE);
    let changes = 0;
    cache.update(job({}));
    cache.onDidChange(() => (changes += 1));
    cache.remove("1", "/w/logs");
    assert.equal(changes, 1);
    assert.equal(cache.size, 0);
  });
});
