import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FollowTracker, planRead } from "../logTail";

const stamp = (size: number, ino = 1, dev = 1) => ({ size, ino, dev });

describe("planRead", () => {
  test("first read loads the whole small file", () => {
    assert.deepEqual(planRead(undefined, stamp(100), 0, 1000), { kind: "reload", from: 0, to: 100 });
  });

  test("first read of a large file loads its tail", () => {
    assert.deepEqual(planRead(undefined, stamp(5000), 0, 1000), { kind: "reload", from: 4000, to: 5000 });
  });

  test("growth appends the new bytes", () => {
    assert.deepEqual(planRead(stamp(100), stamp(150), 100, 1000), { kind: "append", from: 100, to: 150 });
  });

  test("no growth reads nothing", () => {
    assert.deepEqual(planRead(stamp(100), stamp(100), 100, 1000), { kind: "none" });
  });

  test("truncation reloads", () => {
    assert.deepEqual(planRead(stamp(100), stamp(40), 100, 1000), { kind: "reload", from: 0, to: 40 });
  });

  test("replaced file reloads", () => {
    assert.deepEqual(planRead(stamp(100, 1), stamp(120, 2), 100, 1000), { kind: "reload", from: 0, to: 120 });
  });

  test("growth beyond the limit reloads the tail", () => {
    assert.deepEqual(planRead(stamp(100), stamp(3000), 100, 1000), { kind: "reload", from: 2000, to: 3000 });
  });
});

describe("FollowTracker", () => {
  test("new editor follows growth", () => {
    const tracker = new FollowTracker<string>();
    tracker.open("a", 10);
    assert.equal(tracker.contentChanged("a"), true);
  });

  test("growth below a view at the end keeps following", () => {
    const tracker = new FollowTracker<string>();
    tracker.open("a", 10);
    tracker.visibleRangesChanged("a", 0, 9, 10);
    tracker.visibleRangesChanged("a", 0, 9, 25);
    assert.equal(tracker.isFollowing("a"), true);
    assert.equal(tracker.contentChanged("a"), true);
  });

  test("late event for the old viewport keeps following", () => {
    const tracker = new FollowTracker<string>();
    tracker.open("a", 35);
    tracker.visibleRangesChanged("a", 0, 34, 35);
    assert.equal(tracker.contentChanged("a"), true);
    tracker.visibleRangesChanged("a", 0, 34, 50);
    assert.equal(tracker.isFollowing("a"), true);
  });

  test("scrolling up stops following", () => {
    const tracker = new FollowTracker<string>();
    tracker.open("a", 100);
    tracker.visibleRangesChanged("a", 70, 99, 100);
    const reveal = tracker.visibleRangesChanged("a", 10, 40, 100);
    assert.equal(reveal, false);
    assert.equal(tracker.isFollowing("a"), false);
    assert.equal(tracker.contentChanged("a"), false);
  });

  test("shorter editor keeps following and reveals", () => {
    const tracker = new FollowTracker<string>();
    tracker.open("a", 100);
    tracker.visibleRangesChanged("a", 70, 99, 100);
    const reveal = tracker.visibleRangesChanged("a", 70, 85, 100);
    assert.equal(reveal, true);
    assert.equal(tracker.isFollowing("a"), true);
  });

  test("scrolling back to the end resumes", () => {
    const tracker = new FollowTracker<string>();
    tracker.open("a", 100);
    tracker.visibleRangesChanged("a", 70, 99, 100);
    tracker.visibleRangesChanged("a", 10, 40, 100);
    tracker.visibleRangesChanged("a", 90, 119, 120);
    assert.equal(tracker.isFollowing("a"), true);
  });

  test("untracked editor never reveals", () => {
    const tracker = new FollowTracker<string>();
    assert.equal(tracker.contentChanged("b"), false);
  });
});
