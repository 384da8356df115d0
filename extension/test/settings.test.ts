import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { SERVER_SETTINGS, SETTINGS_SECTION } from "../constants";

// The compiled tests run from out/test/, two folders below the repository root.
const REPOSITORY = path.resolve(__dirname, "..", "..");

/** Returns the keys of the server's editor settings, from SETTING_NAMES in the backend's folders.py. */
function backendSettingKeys(): string[] {
  const source = fs.readFileSync(path.join(REPOSITORY, "pyserver", "bgrun", "server", "folders.py"), "utf8");
  const block = /^SETTING_NAMES = \{\n([\s\S]*?)\n\}/m.exec(source);
  assert.ok(block, "SETTING_NAMES not found in pyserver/bgrun/server/folders.py");
  return [...block[1].matchAll(/^\s*"(\w+)":/gm)].map((match) => match[1]);
}

function contributedSettingKeys(): string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(REPOSITORY, "package.json"), "utf8"));
  const sections = [manifest.contributes.configuration].flat();
  return sections.flatMap((section: { properties: Record<string, unknown> }) => Object.keys(section.properties))
    .map((key: string) => key.slice(SETTINGS_SECTION.length + 1));
}

describe("SERVER_SETTINGS", () => {
  test("sends every contributed backend setting", () => {
    const backend = new Set(backendSettingKeys());
    const contributed = contributedSettingKeys().filter((key) => backend.has(key));
    assert.ok(contributed.includes("backend"), `the manifest lacks bgrun.backend: ${contributed.join(", ")}`);
    assert.deepEqual([...SERVER_SETTINGS].sort(), contributed.sort());
  });

  test("names only settings the backend reads", () => {
    const backend = new Set(backendSettingKeys());
    for (const key of SERVER_SETTINGS) {
      assert.ok(backend.has(key), `the backend does not read bgrun.${key}`);
    }
  });
});
