// Helpers for the end-to-end tests of the bgrun extension: its workspace,
// settings and backend, the job list on disk, and the backend's process.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withWorkbench } from './session.mjs';
import { waitUntil } from './wait.mjs';
import { ARTIFACTS_DIR, REPO_ROOT, pickQuickPickItem, readEditorText, readStatusBar, runCommand } from './workbench.mjs';

const execFileAsync = promisify(execFile);

/** DOM id of the extension's status bar item: PUBLISHER.NAME.ITEM_ID. */
export const STATUS_BAR_ID = 'bgrun.bgrun.bgrun';
export const COMMAND_PLACEHOLDER = 'Command to run in the background';
export const CATEGORY_PLACEHOLDER = 'Log folder under';

function cacheDir() {
  return process.env.BGRUN_E2E_CACHE || join(homedir(), '.cache', 'bgrun-e2e');
}

/**
 * Return the files the bgrun scenarios need, as scripts/e2e.sh prepares them:
 * { vsix, python, wheelhouse }. Throws when one is missing, with the fix.
 */
export function bgrunPrerequisites() {
  const prerequisites = {
    vsix: process.env.BGRUN_E2E_VSIX || join(REPO_ROOT, 'bgrun.vsix'),
    python: process.env.BGRUN_E2E_BACKEND_PYTHON || join(cacheDir(), 'backend-venv', 'bin', 'python'),
    wheelhouse: process.env.BGRUN_E2E_WHEELHOUSE || join(cacheDir(), 'wheelhouse'),
  };
  for (const [name, path] of Object.entries(prerequisites)) {
    if (!existsSync(path)) {
      throw new Error(`the ${name} for the bgrun scenarios is missing at ${path}. Run scripts/e2e.sh, which prepares it.`);
    }
  }
  return prerequisites;
}

/**
 * Make a fresh workspace folder with an empty logs/ folder and files, an
 * object that maps relative paths to their text. Returns its path.
 */
export async function makeBgrunWorkspace(name, files = {}) {
  const workspace = await mkdtemp(join(tmpdir(), `bgrun-e2e-ws-${name}-`));
  await mkdir(join(workspace, 'logs'));
  for (const [file, text] of Object.entries(files)) {
    await writeFile(join(workspace, file), text);
  }
  return workspace;
}

/**
 * Run body({ server, page, workspace, logRoot, timings }) in a fresh
 * code-server with bgrun installed, a new workspace holding files, and
 * settings merged over these defaults: the backend venv as bgrun.python, no
 * start delay and no category prompt. Pass `python: null` to leave
 * bgrun.python unset. env goes to code-server and so to the extension host.
 */
export async function withBgrun(name, { files = {}, settings = {}, env = {}, python } = {}, body) {
  const prerequisites = bgrunPrerequisites();
  const workspace = await makeBgrunWorkspace(name, files);
  const baseSettings = { 'bgrun.delay': 0, 'bgrun.askCategory': false, 'bgrun.notifications': 'always' };
  const backendPython = python === undefined ? prerequisites.python : python;
  if (backendPython !== null) baseSettings['bgrun.python'] = backendPython;
  const logRoot = join(workspace, 'logs');
  try {
    await withWorkbench(
      name,
      { workspace, vsixFiles: [prerequisites.vsix], settings: { ...baseSettings, ...settings }, env },
      ({ server, page, context, timings }) => body({ server, page, context, timings, workspace, logRoot }),
    );
  } catch (error) {
    // The job logs and the job store show what the backend did.
    const saved = join(ARTIFACTS_DIR, `${name}-job-logs`);
    await rm(saved, { recursive: true, force: true });
    await cp(logRoot, saved, { recursive: true }).catch(() => {});
    error.message += `\njob logs: ${saved}`;
    throw error;
  } finally {
    if (process.env.BGRUN_E2E_KEEP !== '1') await rm(workspace, { recursive: true, force: true });
  }
}

/** Return the text of bgrun's status bar item, or undefined while it is hidden. */
export async function readBgrunStatus(page) {
  const items = await readStatusBar(page);
  return items.find((item) => item.id === STATUS_BAR_ID)?.text;
}

/**
 * Wait until bgrun's status bar item has text matching pattern (a RegExp) and
 * return that text. The item shows the backend's state and the job counts.
 */
export async function waitForBgrunStatus(page, pattern, { timeout = 60_000 } = {}) {
  let last;
  try {
    return await waitUntil(
      async () => {
        last = await readBgrunStatus(page);
        return last !== undefined && pattern.test(last) && last;
      },
      `bgrun's status bar item to match ${pattern}`,
      { timeout, intervalMs: 200 },
    );
  } catch (error) {
    error.message += `; it shows ${JSON.stringify(last)}`;
    throw error;
  }
}

/**
 * Return the codicon names in bgrun's status bar item, such as ["history"]
 * when the backend is idle. The text alone is "bgrun" both while the backend
 * starts (loading icon) and once it runs (history icon).
 */
export async function readBgrunIcons(page) {
  const item = page.locator(`.part.statusbar [id="${STATUS_BAR_ID}"]`);
  if ((await item.count()) === 0) return [];
  return item.first().evaluate((element) =>
    [...element.querySelectorAll('.codicon')].flatMap((icon) =>
      [...icon.classList].filter((name) => name.startsWith('codicon-')).map((name) => name.slice('codicon-'.length)),
    ),
  );
}

/**
 * Wait until the backend runs: the status bar item shows the idle (history),
 * running (sync), queued (clock) or Slurm queue (server-process) icon, not
 * the starting, setting-up or stopped state.
 */
export async function waitForBackendReady(page, { timeout = 90_000 } = {}) {
  let last;
  try {
    return await waitUntil(
      async () => {
        last = { text: await readBgrunStatus(page), icons: await readBgrunIcons(page) };
        return ['history', 'sync', 'clock', 'server-process'].some((icon) => last.icons.includes(icon)) && last.text;
      },
      "bgrun's backend to run",
      { timeout, intervalMs: 250 },
    );
  } catch (error) {
    error.message += `; the status bar item shows ${JSON.stringify(last)}`;
    throw error;
  }
}

/**
 * Run "bgrun: Run in Background" from the palette with command. With
 * category, answer the category prompt too (bgrun.askCategory must be on).
 */
export async function runInBackground(page, command, { category } = {}) {
  await runCommand(page, 'bgrun: Run in Background');
  // Both prompts are quick picks that the extension host refills after each
  // keystroke. Enter pressed before the refill reaches the page accepts no
  // item, and the category prompt then ignores it, so the row is clicked.
  await pickQuickPickItem(page, command, { placeholder: COMMAND_PLACEHOLDER });
  if (category !== undefined) {
    await pickQuickPickItem(page, category, { placeholder: CATEGORY_PLACEHOLDER });
  }
}

/** Return the jobs under logRoot as `bgrun list --json` prints them, newest first. */
export async function listJobs(logRoot) {
  const { python } = bgrunPrerequisites();
  const { stdout } = await execFileAsync(python, ['-m', 'bgrun', 'list', '--json'], {
    cwd: logRoot,
    env: { ...process.env, BGRUN_LOG_ROOT: logRoot },
  });
  return JSON.parse(stdout);
}

/** Return [{ file, text }] for each .log file under logRoot, sorted by path. */
export function readLogs(logRoot) {
  const logs = [];
  for (const entry of readdirSync(logRoot, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.log')) {
      const file = join(entry.parentPath ?? entry.path, entry.name);
      logs.push({ file, text: readFileSync(file, 'utf8') });
    }
  }
  return logs.sort((a, b) => a.file.localeCompare(b.file));
}

function readProcess(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return { pid, state: fields[0], ppid: Number(fields[1]), cmdline };
  } catch {
    return undefined; // The process exited while /proc was read.
  }
}

/** Return the live descendants of rootPid as [{ pid, ppid, state, cmdline }], read from /proc. */
export function listDescendants(rootPid) {
  const processes = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => readProcess(Number(entry)))
    .filter((candidate) => candidate !== undefined && candidate.state !== 'Z');
  const descendants = [];
  const parents = new Set([rootPid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const candidate of processes) {
      if (parents.has(candidate.ppid) && !parents.has(candidate.pid)) {
        parents.add(candidate.pid);
        descendants.push(candidate);
        grew = true;
      }
    }
  }
  return descendants;
}

/**
 * Return the PIDs of bgrun backends (`bgrun serve` or `python -m
 * bgrun.server`) that descend from code-server's process codeServerPid.
 */
export function findBackendPids(codeServerPid) {
  return listDescendants(codeServerPid)
    .filter(({ cmdline }) => {
      const text = cmdline.join(' ');
      return /\bbgrun\.server\b/.test(text) || /\bbgrun serve\b/.test(text) || /-m bgrun serve\b/.test(text);
    })
    .map(({ pid }) => pid);
}

/**
 * Click the button labelled button on the notification toast whose text
 * contains text (a string or RegExp).
 */
export async function clickNotificationButton(page, text, button, { timeout = 30_000 } = {}) {
  const toast = page.locator('.notifications-toasts .notification-list-item', { hasText: text }).first();
  await toast.locator('.monaco-button', { hasText: button }).first().click({ timeout });
}

/**
 * Wait until the active editor renders text that satisfies predicate(text),
 * and return that text.
 */
export async function waitForEditorText(page, predicate, description, { timeout = 30_000 } = {}) {
  let last = '';
  try {
    return await waitUntil(
      async () => {
        last = await readEditorText(page);
        return predicate(last) && last;
      },
      description,
      { timeout, intervalMs: 250 },
    );
  } catch (error) {
    error.message += `; the editor shows:\n${last}`;
    throw error;
  }
}
