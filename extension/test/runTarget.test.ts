import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { commandForFile, displayPath, shellQuote } from "../runTarget";

describe("shellQuote", () => {
  test("leaves safe words alone", () => {
    assert.equal(shellQuote("src/train_model.py"), "src/train_model.py");
  });

  test("quotes spaces and quotes", () => {
    assert.equal(shellQuote("my file.py"), "'my file.py'");
    assert.equal(shellQuote("it's.py"), "'it'\\''s.py'");
    assert.equal(shellQuote(""), "''");
  });
});

describe("displayPath", () => {
  test("is relative inside the folder", () => {
    assert.equal(displayPath("/w/project/src/a.py", "/w/project"), "src/a.py");
  });

  test("is absolute outside the folder", () => {
    assert.equal(displayPath("/elsewhere/a.py", "/w/project"), "/elsewhere/a.py");
  });
});

describe("commandForFile", () => {
  test("runs Python with python3 by default", () => {
    assert.equal(commandForFile("/w/p/train.py", "/w/p"), "python3 train.py");
  });

  test("uses python3 from an activated environment", () => {
    assert.equal(
      commandForFile("/w/p/train.py", "/w/p", { executable: "/w/p/.venv/bin/python", environment: "/w/p/.venv" }),
      "python3 train.py",
    );
  });

  test("uses a selected interpreter without environment", () => {
    assert.equal(commandForFile("/w/p/train.py", "/w/p", { executable: "/opt/py 3/bin/python" }), "'/opt/py 3/bin/python' train.py");
  });

  test("runs shell, JavaScript and TypeScript files", () => {
    assert.equal(commandForFile("/w/p/run.sh", "/w/p"), "bash run.sh");
    assert.equal(commandForFile("/w/p/a.js", "/w/p"), "node a.js");
    assert.equal(commandForFile("/w/p/a.ts", "/w/p"), "npx tsx a.ts");
  });

  test("returns undefined for other files", () => {
    assert.equal(commandForFile("/w/p/readme.md", "/w/p"), undefined);
  });
});
