// Start, stop and configure code-server instances for end-to-end tests.
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const STARTUP_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;

/**
 * User settings written before the settings a test passes, which override
 * them. They keep the workbench quiet and stop it from reaching the network.
 */
export const DEFAULT_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.enabled': false,
  'typescript.disableAutomaticTypeAcquisition': true,
  'chat.commandCenter.enabled': false,
};

/**
 * Return the code-server executable: $CODE_SERVER if set, otherwise
 * bin/code-server in $BGRUN_E2E_CACHE (default ~/.cache/bgrun-e2e), the
 * folder given to .ci/code-server/install.sh.
 */
export function codeServerBin() {
  const cacheDir = process.env.BGRUN_E2E_CACHE || join(homedir(), '.cache', 'bgrun-e2e');
  const bin = process.env.CODE_SERVER || join(cacheDir, 'bin', 'code-server');
  if (!existsSync(bin)) {
    throw new Error(
      `code-server not found at ${bin}; run .ci/code-server/install.sh ${cacheDir} ` +
        'or set BGRUN_E2E_CACHE to the folder you installed it in',
    );
  }
  return bin;
}

/** Return a TCP port on 127.0.0.1 that was free a moment ago. */
export async function findFreePort() {
  const server = createServer();
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolveListen);
  });
  const { port } = server.address();
  await new Promise((resolveClose) => server.close(resolveClose));
  return port;
}

/**
 * Return the PIDs of the processes in group pgid that have not exited, read
 * from /proc. A zombie does not count: kill(-pgid, 0) still succeeds for a
 * group of zombies, which stay until their parent reaps them, and an orphan
 * inside a PID namespace may never be reaped.
 */
export function listProcessGroup(pgid) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // The process exited while the folder was read.
    }
    // Fields after the command name, which is in parentheses and may contain
    // spaces: state, ppid, pgrp, ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/**
 * Send SIGTERM to process group pgid, then SIGKILL to whatever is left after
 * graceMs. Resolves once no process of the group is left, and throws if some
 * are still running 5 s after SIGKILL. code-server's file watcher and
 * extension host are in the group and outlive a signal to the main process
 * alone.
 */
export async function stopProcessGroup(pgid, graceMs = STOP_GRACE_MS) {
  const signalGroup = (signal) => {
    try {
      process.kill(-pgid, signal);
    } catch (error) {
      if (error.code !== 'ESRCH') throw error;
    }
  };
  if (listProcessGroup(pgid).length === 0) return;
  signalGroup('SIGTERM');
  let deadline = Date.now() + graceMs;
  while (listProcessGroup(pgid).length > 0 && Date.now() < deadline) await sleep(100);
  if (listProcessGroup(pgid).length === 0) return;

  signalGroup('SIGKILL');
  deadline = Date.now() + 5_000;
  while (listProcessGroup(pgid).length > 0 && Date.now() < deadline) await sleep(50);
  const left = listProcessGroup(pgid);
  if (left.length > 0) {
    throw new Error(`processes ${left.join(', ')} of group ${pgid} are still running after SIGKILL`);
  }
}

/**
 * Install a .vsix into extensionsDir with `code-server --install-extension`.
 * userDataDir and home keep code-server from writing under the real home.
 */
export async function installExtension(vsixFile, { extensionsDir, userDataDir, home }) {
  const bin = codeServerBin();
  const args = [
    '--config', '/dev/null',
    '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir,
    '--install-extension', resolve(vsixFile),
    '--force',
  ];
  let output;
  try {
    output = await execFileAsync(bin, args, {
      env: { ...process.env, HOME: home },
      timeout: STARTUP_TIMEOUT_MS,
    });
  } catch (error) {
    throw new Error(
      `code-server --install-extension ${vsixFile} failed: ${error.message}\n${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
  }
  const text = `${output.stdout}${output.stderr}`;
  if (!/was successfully installed/.test(text)) {
    throw new Error(`code-server --install-extension ${vsixFile} did not report success:\n${text}`);
  }
  return text;
}

async function waitForHealthz(url, child, logFile, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`code-server exited (${child.exitCode ?? child.signalCode}) before serving ${url}; see ${logFile}`);
    }
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
      lastError = new Error(`HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${url}/healthz (${lastError?.message}); see ${logFile}`);
}

/**
 * Start code-server in a process group of its own, with fresh user-data,
 * extensions and home folders under a new temporary folder.
 *
 * Options:
 * - workspace: folder the workbench opens (required).
 * - settings: user settings, merged over DEFAULT_SETTINGS.
 * - vsixFiles: .vsix files installed before the server starts.
 * - port: TCP port on 127.0.0.1 (default: a free one).
 * - env: extra environment variables for code-server and its extension host.
 *
 * Returns { url, workbenchUrl, port, pid, rootDir, userDataDir,
 * extensionsDir, home, logFile, startMs, stop() }. stop() ends the whole
 * process group and may be called more than once.
 */
export async function startCodeServer({ workspace, settings = {}, vsixFiles = [], port, env = {} }) {
  if (!workspace) throw new Error('startCodeServer: workspace is required');
  const bin = codeServerBin();
  const rootDir = await mkdtemp(join(tmpdir(), 'bgrun-e2e-'));
  const userDataDir = join(rootDir, 'user-data');
  const extensionsDir = join(rootDir, 'extensions');
  const home = join(rootDir, 'home');
  await mkdir(join(userDataDir, 'User'), { recursive: true });
  await mkdir(extensionsDir, { recursive: true });
  await mkdir(home, { recursive: true });
  await writeFile(
    join(userDataDir, 'User', 'settings.json'),
    `${JSON.stringify({ ...DEFAULT_SETTINGS, ...settings }, null, 2)}\n`,
  );

  for (const vsixFile of vsixFiles) {
    await installExtension(vsixFile, { extensionsDir, userDataDir, home });
  }

  const serverPort = port ?? (await findFreePort());
  const url = `http://127.0.0.1:${serverPort}`;
  const configFile = join(rootDir, 'config.yaml');
  await writeFile(configFile, `bind-addr: 127.0.0.1:${serverPort}\nauth: none\ncert: false\n`);
  const logFile = join(rootDir, 'code-server.log');
  const logFd = openSync(logFile, 'w');

  const started = Date.now();
  // detached: true runs setsid(), so the server, its file watcher and its
  // extension hosts share one process group that stop() can end.
  const child = spawn(
    bin,
    [
      '--config', configFile,
      '--user-data-dir', userDataDir,
      '--extensions-dir', extensionsDir,
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${serverPort}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
    ],
    { detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, HOME: home, ...env } },
  );
  closeSync(logFd);
  const pid = child.pid;
  const stop = () => stopProcessGroup(pid);

  try {
    await waitForHealthz(url, child, logFile, STARTUP_TIMEOUT_MS);
  } catch (error) {
    await stop();
    const logTail = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
    error.message += `\nlast lines of ${logFile}:\n${logTail}`;
    throw error;
  }

  return {
    url,
    workbenchUrl: `${url}/?folder=${encodeURIComponent(resolve(workspace))}`,
    port: serverPort,
    pid,
    rootDir,
    userDataDir,
    extensionsDir,
    home,
    logFile,
    startMs: Date.now() - started,
    stop,
  };
}
