import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ServerLogParser } from "../serverLog";

describe("ServerLogParser", () => {
  test("maps the server's levels", () => {
    const parser = new ServerLogParser();
    const lines = parser.push(
      "2026-12-04 21:10:35,844 bgrun serve INFO bgrun.server.lifecycle: initialize from code-server\n" +
        "2026-12-04 21:10:36,001 bgrun serve WARNING bgrun.server.requests: bgrun/stop rejected\n",
    );
    assert.deepEqual(lines, [
      { level: "info", message: "[server] bgrun.server.lifecycle: initialize from code-server" },
      { level: "warn", message: "[server] bgrun.server.requests: bgrun/stop rejected" },
    ]);
  });

  test("joins lines split across chunks", () => {
    const parser = new ServerLogParser();
    assert.deepEqual(parser.push("2026-12-04 21:10:35,844 bgrun serve ERR"), []);
    const lines = parser.push("OR bgrun.server: background task failed\n");
    assert.deepEqual(lines, [{ level: "error", message: "[server] bgrun.server: background task failed" }]);
  });

  test("keeps the level for traceback lines", () => {
    const parser = new ServerLogParser();
    const lines = parser.push("2026-12-04 21:10:35,844 bgrun serve ERROR x: failed\nTraceback (most recent call last):\n\n");
    assert.equal(lines[1].level, "error");
    assert.equal(lines.length, 2);
  });

  test("flush returns the unfinished line", () => {
    const parser = new ServerLogParser();
    parser.push("bgrun serve: error: the language server needs pygls");
    assert.deepEqual(parser.flush(), [{ level: "warn", message: "[server] bgrun serve: error: the language server needs pygls" }]);
  });
});
