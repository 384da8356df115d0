import assert from "node:assert/strict";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { PROBE_SCRIPT, choosePython, expandPath, isSupportedVersion, parseProbe, venvPython } from "../python";
import { runProcess } from "../processes";

describe("choosePython", () => {
  test("setting comes first", () => {
    assert.deepEqual(choosePython({ setting: "/opt/py/bin/python", extensionInterpreter: "/x/python" }), {
      command: "/opt/py/bin/python",
      source: "setting",
    });
  });

  test("Python extension comes second", () => {
    assert.deepEqual(choosePython({ setting: "", extensionInterpreter: "/x/python" }), { command: "/x/python", source: "pythonExtension" });
  });

  test("python3 on PATH comes last", () => {
    assert.deepEqual(choosePython({ setting: "  " }), { command: "python3", source: "path" });
    assert.deepEqual(choosePython({ setting: "", extensionInterpreter: "" }), { command: "python3", source: "path" });
  });
});

describe("expandPath", () => {
  test("expands home and workspace folder", () => {
    assert.equal(expandPath("~/venv/bin/python", "/w"), path.join(os.homedir(), "venv/bin/python"));
    assert.equal(expandPath("${workspaceFolder}/.venv/bin/python", "/w"), "/w/.venv/bin/python");
    assert.equal(expandPath("${env:BGRUN_TEST_VALUE}/x", undefined, { BGRUN_TEST_VALUE: "/e" }), "/e/x");
  });

  test("keeps workspace folder without a folder", () => {
    assert.equal(expandPath("${workspaceFolder}/x", undefined), "${workspaceFolder}/x");
  });
});

describe("parseProbe", () => {
  test("reads the last JSON line", () => {
    const result = parseProbe('warning\n{"version": [3, 11, 7], "executable": "/usr/bin/python3", "prefix": "/usr", "bgrun": "0.1.0"}\n');
    assert.equal(result?.bgrun, "0.1.0");
    assert.deepEqual(result?.version, [3, 11, 7]);
  });

  test("rejects other output", () => {
    assert.equal(parseProbe("Traceback (most recent call last):"), undefined);
    assert.equal(parseProbe('{"x": 1}'), undefined);
  });
});

describe("isSupportedVersion", () => {
  test("needs 3.9 or newer", () => {
    assert.equal(isSupportedVersion([3, 8, 10]), false);
    assert.equal(isSupportedVersion([3, 9, 0]), true);
    assert.equal(isSupportedVersion([4, 0, 0]), true);
  });
});

describe("venvPython", () => {
  test("uses bin on POSIX", () => {
    assert.equal(venvPython("/s/venv", "linux"), "/s/venv/bin/python");
  });
});

describe("probe script", () => {
  test("runs on the local python3", async (context) => {
    const result = await runProcess("python3", ["-c", PROBE_SCRIPT], { timeoutMs: 20000, cwd: os.tmpdir() });
    if (result.error && (result.error as NodeJS.ErrnoException).code === "ENOENT") {
      context.skip("python3 is not on PATH");
      return;
    }
    const probe = parseProbe(result.stdout);
    assert.ok(probe, `probe output: ${result.stdout} ${result.stderr}`);
    assert.ok(probe.bgrun !== undefined || probe.error !== undefined);
  });
});
