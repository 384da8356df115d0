// End-to-end scenarios of the bgrun extension in code-server: each test gets
// its own code-server, workspace, settings and backend. scripts/e2e.sh
// prepares the .vsix, the backend venv and the wheelhouse they use.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  bgrunPrerequisites,
  clickNotificationButton,
  findBackendPids,
  listJobs,
  readBgrunStatus,
  readLogs,
  runInBackground,
  waitForBackendReady,
  waitForBgrunStatus,
  waitForEditorText,
  withBgrun,
} from './lib/bgrun.mjs';
import { readEditorText, runCommand, screenshot, waitForNotification, waitUntil } from './lib/harness.mjs';

const execFileAsync = promisify(execFile);
const TEST_TIMEOUT_MS = 240_000;

// Prints "tick 01" to "tick 12" every 0.5 s, each with three detail lines, so
// the log outgrows the editor and only a view that follows shows the end.
const TICKER = `import time
for i in range(1, 13):
    print(f"tick {i:02d}", flush=True)
    for part in "abc":
        print(f"  detail {i:02d}{part}", flush=True)
    time.sleep(0.5)
`;

// Draws a tqdm-style bar with carriage returns, in green, for about 10 s.
const PROGRESS = `import sys, time
GREEN, RESET = "\\x1b[32m", "\\x1b[0m"
print(f"{GREEN}epoch 1{RESET}", flush=True)
for n in range(41):
    percent = n * 100 // 40
    bar = "#" * (n // 2) + " " * (20 - n // 2)
    sys.stdout.write(f"\\r{GREEN}train{RESET}: {percent:3d}%|{bar}| {n}/40 [00:{n // 4:02d}<00:10, 4.0it/s]")
    sys.stdout.flush()
    time.sleep(0.25)
sys.stdout.write("\\n")
print("done training", flush=True)
`;

// The notification bgrun shows when a job is submitted.
const STARTED = /Job #\d+ \S+ \(.*\) starts in/;

function lastTick(text) {
  const ticks = text.match(/tick \d\d/g) ?? [];
  return ticks.at(-1);
}

async function openLogFromStartNotification(page) {
  await waitForNotification(page, STARTED);
  await clickNotificationButton(page, STARTED, 'Open Log');
}

test('run in background follows log', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const files = { 'ticker.py': TICKER };
  const settings = { 'bgrun.askCategory': true };
  await withBgrun('bgrun-run-follow', { files, settings }, async ({ page, logRoot }) => {
    await waitForBackendReady(page);
    await runInBackground(page, 'python3 ticker.py', { category: 'e2e' });
    await openLogFromStartNotification(page);

    const status = await waitForBgrunStatus(page, /1 running/, { timeout: 15_000 });
    assert.match(status, /^bgrun: 1 running/);

    const first = await waitForEditorText(page, (text) => lastTick(text) !== undefined, 'the log view to show a tick');
    await sleep(1_500);
    const second = await readEditorText(page);
    const inFile = lastTick(readLogs(logRoot).map((log) => log.text).join('\n'));
    assert.ok(lastTick(second) > lastTick(first), `the view did not follow: ${lastTick(first)} then ${lastTick(second)}`);

    const ended = await waitForNotification(page, /Job #\d+ ticker succeeded/, { timeout: 30_000 });
    assert.match(ended, /Log: ticker_\d{8}_\d{6}\.log/);
    const final = await waitForEditorText(page, (text) => text.includes('[bgrun] state: succeeded'), 'the footer in the log view');
    assert.ok(final.includes('tick 12'), 'the last tick is not in view at the end');
    await screenshot(page, 'bgrun-run-follow');

    const jobs = await listJobs(logRoot);
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].state, 'succeeded');
    assert.equal(jobs[0].category, 'e2e');
    t.diagnostic(`log view followed from ${lastTick(first)} to ${lastTick(second)} in 1.5 s; the file had ${inFile} then`);
  });
});

test('stop job from job list', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withBgrun('bgrun-stop', {}, async ({ page, logRoot }) => {
    await waitForBackendReady(page);
    await runInBackground(page, 'sleep 300');
    await waitForNotification(page, STARTED);
    await waitForBgrunStatus(page, /1 running/, { timeout: 15_000 });

    await runCommand(page, 'bgrun: Show Background Jobs');
    const jobRow = page.locator('.quick-input-list .monaco-list-row', { hasText: 'sleep' }).first();
    await jobRow.click({ timeout: 30_000 });
    const stopRow = page.locator('.quick-input-list .monaco-list-row').filter({
      has: page.locator('.label-name', { hasText: /^\s*Stop\s*$/ }),
    });
    await stopRow.first().click({ timeout: 30_000 });

    const stopped = await waitForNotification(page, /Job #\d+ sleep was stopped/, { timeout: 30_000 });
    assert.match(stopped, /was stopped/);
    const jobs = await waitUntil(async () => {
      const listed = await listJobs(logRoot);
      return listed[0]?.state === 'cancelled' && listed;
    }, 'the job to be cancelled in the job store');
    const logText = readFileSync(jobs[0].log_path, 'utf8');
    assert.match(logText, /^\[bgrun\] state: cancelled\b/m);
    await waitForBgrunStatus(page, /^bgrun$/, { timeout: 15_000 });
    await screenshot(page, 'bgrun-stop');
  });
});

test('failed job reruns from notification', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withBgrun('bgrun-fail-rerun', {}, async ({ page, logRoot }) => {
    await waitForBackendReady(page);
    await runInBackground(page, 'echo about to fail; exit 3');
    const failure = /Job #1 \S+ failed \(exit code 3\)/;
    const message = await waitForNotification(page, failure, { timeout: 30_000 });
    await screenshot(page, 'bgrun-fail-rerun');
    assert.match(message, /failed \(exit code 3\)/);

    await clickNotificationButton(page, failure, 'Rerun');
    await waitForNotification(page, /Job #2 \S+ failed \(exit code 3\)/, { timeout: 30_000 });
    const jobs = await listJobs(logRoot);
    assert.equal(jobs.length, 2, `expected 2 jobs, found ${JSON.stringify(jobs.map((job) => job.id))}`);
    for (const job of jobs) {
      assert.equal(job.state, 'failed');
      assert.equal(job.exit_code, 3);
      assert.equal(job.command, 'echo about to fail; exit 3');
    }
    assert.equal(readLogs(logRoot).length, 2);
  });
});

test('wrong python shows numbered fixes', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withBgrun('bgrun-wrong-python', { python: '/nonexistent/python' }, async ({ page }) => {
    const message = await waitForNotification(page, 'bgrun could not start its backend', { timeout: 90_000 });
    await screenshot(page, 'bgrun-wrong-python');
    assert.ok(message.includes('/nonexistent/python'), `the message does not name the Python: ${message}`);
    for (const fix of ['1. Set bgrun.python', '2. Or select', '3. Or run "bgrun: Set Up Private Python Environment"', '4. Then run']) {
      assert.ok(message.includes(fix), `fix "${fix}" is missing from: ${message}`);
    }
    await waitForBgrunStatus(page, /backend stopped/, { timeout: 15_000 });
  });
});

test('python without backend is set up offline', { timeout: 420_000 }, async (t) => {
  const { wheelhouse } = bgrunPrerequisites();
  const scratch = await mkdtemp(join(tmpdir(), 'bgrun-e2e-bare-'));
  const bareVenv = join(scratch, 'venv');
  // A venv with nothing but pip, first on PATH, so the extension finds it as python3.
  await execFileAsync('python3', ['-m', 'venv', bareVenv]);
  const env = {
    PATH: `${join(bareVenv, 'bin')}:${process.env.PATH}`,
    PIP_NO_INDEX: '1',
    PIP_FIND_LINKS: wheelhouse,
    // Only this wheelhouse: no pip.conf of the machine applies.
    PIP_CONFIG_FILE: '/dev/null',
  };
  try {
    await withBgrun('bgrun-setup-offline', { python: null, env }, async ({ page, logRoot }) => {
      const offer = await waitForNotification(page, 'Set up a private environment', { timeout: 90_000 });
      assert.ok(offer.includes('cannot import the bgrun backend'), `unexpected offer: ${offer}`);
      await clickNotificationButton(page, 'Set up a private environment', 'Set Up');

      const started = Date.now();
      await waitForBackendReady(page, { timeout: 300_000 });
      t.diagnostic(`private environment set up in ${Date.now() - started} ms`);

      await runInBackground(page, 'echo backend ready');
      await waitForNotification(page, /Job #1 \S+ succeeded/, { timeout: 30_000 });
      await screenshot(page, 'bgrun-setup-offline');
      const jobs = await listJobs(logRoot);
      assert.equal(jobs[0]?.state, 'succeeded');
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});

test('progress bar renders latest frame', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withBgrun('bgrun-progress', { files: { 'progress.py': PROGRESS } }, async ({ page, logRoot }) => {
    await waitForBackendReady(page);
    await runInBackground(page, 'python3 progress.py');
    await openLogFromStartNotification(page);

    const status = await waitForBgrunStatus(page, /1 running \d{1,3}%/, { timeout: 20_000 });
    assert.match(status, /^bgrun: 1 running \d{1,3}%$/);
    const midway = await waitForEditorText(page, (text) => /\d+%\|/.test(text), 'a progress frame in the log view');
    await screenshot(page, 'bgrun-progress');

    const final = await waitForEditorText(page, (text) => text.includes('[bgrun] state: succeeded'), 'the footer in the log view', {
      timeout: 40_000,
    });
    for (const text of [midway, final]) {
      assert.equal(text.match(/%\|/g)?.length, 1, `more than one progress frame is shown:\n${text}`);
      assert.ok(!text.includes('\x1b'), `an escape character is shown:\n${text}`);
      assert.ok(!/\[\d*m/.test(text), `an SGR fragment is shown:\n${text}`);
      assert.ok(!text.includes('\r'), `a carriage return is shown:\n${text}`);
    }
    assert.match(final, /^train: 100%\|#{20}\| 40\/40 \[/m);
    assert.match(final, /^epoch 1$/m);
    assert.match(final, /^done training$/m);
    const jobs = await listJobs(logRoot);
    assert.equal(jobs[0].state, 'succeeded');
  });
});

test('backend restarts after kill -9', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const slowTicker = TICKER.replace('time.sleep(0.5)', 'time.sleep(1)');
  await withBgrun('bgrun-backend-kill', { files: { 'ticker.py': slowTicker } }, async ({ server, page, logRoot }) => {
    await waitForBackendReady(page);
    await runInBackground(page, 'python3 ticker.py');
    await waitForBgrunStatus(page, /1 running/, { timeout: 15_000 });

    const before = findBackendPids(server.pid);
    assert.equal(before.length, 1, `expected one backend process, found ${JSON.stringify(before)}`);
    process.kill(before[0], 'SIGKILL');
    const after = await waitUntil(() => {
      const pids = findBackendPids(server.pid).filter((pid) => pid !== before[0]);
      return pids.length > 0 && pids;
    }, 'a new backend process', { timeout: 30_000 });
    t.diagnostic(`backend ${before[0]} killed, ${after.join(', ')} started`);

    const jobsMidway = await listJobs(logRoot);
    assert.equal(jobsMidway[0].state, 'running', 'the job did not survive the backend');
    await waitForNotification(page, /Job #1 ticker succeeded/, { timeout: 40_000 });
    await waitForBgrunStatus(page, /^bgrun$/, { timeout: 15_000 });
    await screenshot(page, 'bgrun-backend-kill');
    assert.equal((await listJobs(logRoot))[0].state, 'succeeded');
    assert.notEqual(await readBgrunStatus(page), undefined);
  });
});
