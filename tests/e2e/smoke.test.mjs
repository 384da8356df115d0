// Smoke test of the end-to-end harness: a fixture extension, installed from a
// .vsix into a fresh code-server and driven through the command palette.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  REPO_ROOT,
  answerInputBox,
  findEditorTab,
  listProcessGroup,
  packVsix,
  pickQuickPickItem,
  readEditorText,
  readStatusBar,
  runCommand,
  screenshot,
  waitForNotification,
  waitForFile,
  waitForStatusBarText,
  waitUntil,
  withWorkbench,
} from './lib/harness.mjs';

const FIXTURE_DIR = join(REPO_ROOT, 'tests', 'e2e', 'fixtures', 'hello-extension');
const FIXTURE_ID = 'bgrun-e2e.e2e-fixture';
const TEST_TIMEOUT_MS = 180_000;

let scratchDir;
let vsixFile;

before(async () => {
  scratchDir = await mkdtemp(join(tmpdir(), 'bgrun-e2e-smoke-'));
  vsixFile = await packVsix(FIXTURE_DIR, join(scratchDir, 'e2e-fixture-0.0.1.vsix'));
});

after(async () => {
  await rm(scratchDir, { recursive: true, force: true });
});

async function makeWorkspace(name) {
  const workspace = join(scratchDir, name);
  await rm(workspace, { recursive: true, force: true });
  await mkdir(workspace, { recursive: true });
  await writeFile(join(workspace, 'README.txt'), 'workspace for the end-to-end smoke test\n');
  return workspace;
}

test('say hello shows notification and status', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const workspace = await makeWorkspace('say-hello');
  let codeServerPgid;
  await withWorkbench('smoke-say-hello', { workspace, vsixFiles: [vsixFile] }, async ({ server, page, timings }) => {
    codeServerPgid = server.pid;
    const installed = join(server.extensionsDir, `${FIXTURE_ID}-0.0.1`, 'package.json');
    assert.ok(existsSync(installed), `fixture not installed at ${installed}`);

    const commandStarted = Date.now();
    await runCommand(page, 'E2E Fixture: Say Hello');
    timings.firstCommandMs = Date.now() - commandStarted;
    const message = await waitForNotification(page, 'Hello from the E2E fixture');
    assert.equal(message, 'Hello from the E2E fixture');

    const statusText = await waitForStatusBarText(page, 'E2E fixture: 1 greeting(s)');
    assert.equal(statusText, 'E2E fixture: 1 greeting(s)');
    const items = await readStatusBar(page);
    const fixtureItem = items.find((item) => item.text === 'E2E fixture: 1 greeting(s)');
    assert.ok(fixtureItem, `fixture item missing from ${JSON.stringify(items)}`);
    assert.equal(fixtureItem.id, `${FIXTURE_ID}.bgrunE2eFixture.status`);

    const file = await screenshot(page, 'smoke-say-hello');
    assert.ok((await stat(file)).size > 10_000, `screenshot ${file} is under 10 kB, so probably blank`);
    t.diagnostic(
      `code-server ready in ${timings.codeServerMs} ms, workbench in ${timings.workbenchMs} ms, ` +
        `first command found in ${timings.firstCommandMs} ms`,
    );
  });

  assert.deepEqual(listProcessGroup(codeServerPgid), [], `code-server process group ${codeServerPgid} is still running`);
});

test('write greeting answers quick pick and input', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const workspace = await makeWorkspace('write-greeting');
  await withWorkbench('smoke-write-greeting', { workspace, vsixFiles: [vsixFile] }, async ({ page, timings }) => {
    await runCommand(page, 'E2E Fixture: Write Greeting');
    await pickQuickPickItem(page, 'Good morning', { placeholder: 'Choose a greeting' });
    await answerInputBox(page, 'Ada', { prompt: 'Name to greet' });

    const text = await waitForFile(join(workspace, 'greeting.txt'), { contains: 'Ada' });
    assert.equal(text, 'Good morning, Ada!\n');

    await findEditorTab(page, 'greeting.txt');
    const editorText = await waitUntil(async () => {
      const visible = await readEditorText(page);
      return visible.includes('Ada') && visible;
    }, 'the greeting.txt editor to show "Ada"');
    assert.equal(editorText.trimEnd(), 'Good morning, Ada!');

    await screenshot(page, 'smoke-write-greeting');
    t.diagnostic(`code-server ready in ${timings.codeServerMs} ms, workbench in ${timings.workbenchMs} ms`);
  });
});
