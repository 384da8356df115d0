// End-to-end scenario of the extension with the slurm backend: a real
// single-node Slurm cluster from .ci/slurm/up.sh, started inside the test's
// network namespace, so it listens on that namespace's loopback only.
// scripts/e2e.sh installs the Slurm packages before the namespace starts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { listJobs, readBgrunIcons, runInBackground, waitForBackendReady, waitForBgrunStatus, withBgrun } from './lib/bgrun.mjs';
import { runCommand, screenshot, waitForNotification, waitUntil } from './lib/harness.mjs';
import { REPO_ROOT } from './lib/workbench.mjs';

const execFileAsync = promisify(execFile);
const SLURM_SCRIPTS = join(REPO_ROOT, '.ci', 'slurm');
const SCRIPT_TIMEOUT_MS = 300_000;

/**
 * Start a cluster in a new state folder under /tmp (munged rejects a socket
 * below a folder that not every user can enter, and mkdtemp makes 0700
 * folders) and return { stateDir, slurmConf }.
 */
async function startCluster() {
  const stateDir = await mkdtemp('/tmp/bgrun-e2e-slurm-');
  await chmod(stateDir, 0o755);
  try {
    await execFileAsync(join(SLURM_SCRIPTS, 'up.sh'), [stateDir], { timeout: SCRIPT_TIMEOUT_MS });
  } catch (error) {
    await stopCluster(stateDir);
    throw new Error(`.ci/slurm/up.sh ${stateDir} failed: ${error.stderr?.trim().split('\n').slice(-5).join(' / ') || error.message}`);
  }
  return { stateDir, slurmConf: join(stateDir, 'slurm.conf') };
}

async function stopCluster(stateDir) {
  await execFileAsync(join(SLURM_SCRIPTS, 'down.sh'), [stateDir], { timeout: SCRIPT_TIMEOUT_MS }).catch(() => {});
  if (process.env.BGRUN_E2E_KEEP !== '1') await rm(stateDir, { recursive: true, force: true });
}

test('Slurm job waits in queue then runs', { timeout: 420_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('the Slurm test cluster needs root: .ci/slurm/up.sh starts slurmctld as root');
    return;
  }
  const cluster = await startCluster();
  const env = { SLURM_CONF: cluster.slurmConf };
  // --hold keeps the job PENDING (reason JobHeldUser) until the test releases it.
  const settings = { 'bgrun.backend': 'slurm', 'bgrun.slurmOptions': ['--hold'] };
  try {
    await withBgrun('bgrun-slurm-queue', { settings, env }, async ({ page, logRoot }) => {
      await waitForBackendReady(page);
      await runInBackground(page, 'echo hello from slurm; sleep 4');
      await waitForNotification(page, /Job #1 \S+ \(model_dev\) goes to Slurm in 0 s/);

      const queued = await waitForBgrunStatus(page, /1 in Slurm queue/, { timeout: 30_000 });
      assert.equal(queued, 'bgrun: 1 in Slurm queue');
      assert.ok((await readBgrunIcons(page)).includes('server-process'), 'the status bar does not show the Slurm queue icon');
      const [job] = await listJobs(logRoot);
      assert.equal(job.backend, 'slurm');
      assert.match(job.backend_id ?? '', /^\d+$/);

      await runCommand(page, 'bgrun: Show Background Jobs');
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'echo' }).first();
      // The server reads the pending reason with squeue every 5 s.
      const text = await waitUntil(async () => {
        const rowText = await row.innerText({ timeout: 5_000 }).catch(() => '');
        return rowText.includes('reason: JobHeldUser') && rowText;
      }, 'the job list to show the Slurm pending reason', { timeout: 60_000 });
      assert.ok(text.includes('queued in Slurm'), `the row does not say the job is queued in Slurm: ${text}`);
      assert.ok(text.includes(`Slurm job ${job.backend_id}`), `the row does not name the Slurm job: ${text}`);
      await screenshot(page, 'bgrun-slurm-queue');
      await page.keyboard.press('Escape');

      await execFileAsync('scontrol', ['release', job.backend_id], { env: { ...process.env, ...env }, timeout: 30_000 });
      await waitForBgrunStatus(page, /1 running/, { timeout: 60_000 });
      await waitForNotification(page, /Job #1 \S+ succeeded/, { timeout: 60_000 });
      await waitForBgrunStatus(page, /^bgrun$/, { timeout: 15_000 });

      const [done] = await listJobs(logRoot);
      assert.equal(done.state, 'succeeded');
      const log = readFileSync(done.log_path, 'utf8');
      assert.match(log, /^hello from slurm$/m);
      assert.match(log, new RegExp(`^\\[bgrun\\] slurm job id: ${job.backend_id}$`, 'm'));
      assert.match(log, /^\[bgrun\] state: succeeded\b/m);
    });
  } finally {
    await stopCluster(cluster.stateDir);
  }
});
