import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backendFixes, diagnosePipOutput } from "../setupMessages";
import { describeFailure, runProcess } from "../processes";

describe("backendFixes", () => {
  test("numbers the fixes and names the settings", () => {
    const text = backendFixes();
    assert.match(text, /^1\. Set bgrun\.python to a Python 3\.9\+ that has the bgrun backend \(from a clone of bgrun: python -m pip install '.\/pyserver\[server\]'\)/);
    assert.match(text, / 2\. .*Python: Select Interpreter/);
    assert.match(text, / 3\. .*PIP_FIND_LINKS/);
  });
});

describe("diagnosePipOutput", () => {
  test("recognises an unreachable index", () => {
    const output =
      "WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(': Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')'\n" +
      "ERROR: Could not find a version that satisfies the requirement pygls<3,>=2.0 (from bgrun[server]) (from versions: none)\n" +
      "ERROR: No matching distribution found for pygls<3,>=2.0\n";
    const diagnosis = diagnosePipOutput(output);
    assert.equal(diagnosis.unreachable, true);
    assert.equal(diagnosis.missing, "pygls<3,>=2.0");
    assert.match(diagnosis.summary, /could not reach a package index/);
  });

  test("reads versions none as no reachable index", () => {
    const output =
      "ERROR: Could not find a version that satisfies the requirement setuptools>=68 (from versions: none)\n" +
      "ERROR: No matching distribution found for setuptools>=68\n";
    const diagnosis = diagnosePipOutput(output);
    assert.equal(diagnosis.unreachable, true);
    assert.match(diagnosis.summary, /no package index could be reached/);
    assert.match(diagnosis.summary, /setuptools>=68/);
  });

  test("recognises a wheelhouse without the package", () => {
    const diagnosis = diagnosePipOutput("ERROR: No matching distribution found for watchdog>=4\n");
    assert.equal(diagnosis.unreachable, false);
    assert.match(diagnosis.summary, /found no distribution for watchdog>=4/);
  });

  test("falls back to the last error line", () => {
    assert.equal(diagnosePipOutput("x\nERROR: disk full\n").summary, "pip failed: ERROR: disk full");
  });
});

describe("runProcess", () => {
  test("captures output and exit code", async () => {
    const result = await runProcess(process.execPath, ["-e", "console.log('out'); console.error('err'); process.exit(3)"]);
    assert.equal(result.code, 3);
    assert.equal(result.stdout, "out\n");
    assert.equal(result.stderr, "err\n");
  });

  test("reports a missing program", async () => {
    const result = await runProcess("/nonexistent/bgrun-python", []);
    assert.equal(describeFailure("/nonexistent/bgrun-python", result), "/nonexistent/bgrun-python was not found");
  });

  test("ends a process that runs too long", async () => {
    const result = await runProcess(process.execPath, ["-e", "setTimeout(() => {}, 10000)"], { timeoutMs: 200 });
    assert.equal(result.timedOut, true);
    assert.match(describeFailure("node", result), /timed out/);
  });
});
