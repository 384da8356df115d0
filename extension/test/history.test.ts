import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_HISTORY, addToHistory, commandChoices, removeFromHistory, sanitizeHistory } from "../history";

describe("addToHistory", () => {
  test("puts the command first", () => {
    assert.deepEqual(addToHistory(["a", "b"], "c"), ["c", "a", "b"]);
  });

  test("moves a repeated command to the front", () => {
    assert.deepEqual(addToHistory(["a", "b", "c"], "b"), ["b", "a", "c"]);
  });

  test("trims and ignores blank commands", () => {
    assert.deepEqual(addToHistory(["a"], "  b  "), ["b", "a"]);
    assert.deepEqual(addToHistory(["a"], "   "), ["a"]);
  });

  test("caps the length", () => {
    const history = Array.from({ length: MAX_HISTORY }, (_, index) => `cmd ${index}`);
    const next = addToHistory(history, "new");
    assert.equal(next.length, MAX_HISTORY);
    assert.equal(next[0], "new");
    assert.equal(next.includes(`cmd ${MAX_HISTORY - 1}`), false);
  });
});

describe("removeFromHistory", () => {
  test("removes every copy", () => {
    assert.deepEqual(removeFromHistory(["a", "b"], "a"), ["b"]);
  });
});

describe("sanitizeHistory", () => {
  test("drops non-strings and duplicates", () => {
    assert.deepEqual(sanitizeHistory(["a", 3, "", "a", "b"]), ["a", "b"]);
    assert.deepEqual(sanitizeHistory({}), []);
  });
});

describe("commandChoices", () => {
  test("offers the file command before the history", () => {
    const choices = commandChoices("", "python3 train.py", ["pytest", "python3 train.py"]);
    assert.deepEqual(
      choices.map((choice) => [choice.kind, choice.command]),
      [
        ["file", "python3 train.py"],
        ["history", "pytest"],
      ],
    );
  });

  test("offers a new typed command first", () => {
    const choices = commandChoices("make data", "python3 a.py", ["pytest"]);
    assert.deepEqual(choices[0], { command: "make data", kind: "typed" });
    assert.equal(choices.length, 3);
  });

  test("does not repeat a typed command from the history", () => {
    const choices = commandChoices("pytest", undefined, ["pytest"]);
    assert.deepEqual(choices, [{ command: "pytest", kind: "history" }]);
  });
});
