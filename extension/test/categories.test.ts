import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { categoryChoices, isValidCategory } from "../categories";

describe("isValidCategory", () => {
  test("accepts folder-safe names", () => {
    assert.equal(isValidCategory("training"), true);
    assert.equal(isValidCategory("eval-v2.1_x"), true);
  });

  test("rejects unsafe names", () => {
    assert.equal(isValidCategory(""), false);
    assert.equal(isValidCategory(".."), false);
    assert.equal(isValidCategory("a/b"), false);
    assert.equal(isValidCategory("with space"), false);
  });
});

describe("categoryChoices", () => {
  test("puts the guess first, each name once", () => {
    assert.deepEqual(categoryChoices("training", "", ["evaluation", "training"]), ["training", "model_dev", "testing", "evaluation"]);
  });

  test("adds the default category after the guess", () => {
    assert.deepEqual(categoryChoices("testing", "nightly", []), ["testing", "nightly", "model_dev", "training"]);
  });

  test("drops invalid job categories", () => {
    assert.deepEqual(categoryChoices("model_dev", "", ["../x"]), ["model_dev", "training", "testing"]);
  });
});
