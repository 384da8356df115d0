// One end-to-end session: a fresh code-server plus a Chromium page on its
// workbench, with logs saved when the test body fails.
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCodeServer } from './code-server.mjs';
import { ARTIFACTS_DIR, openWorkbench, screenshot } from './workbench.mjs';

async function saveFailureArtifacts(name, server, page) {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const saved = [];
  if (page) {
    saved.push(await screenshot(page, `${name}-failure`));
    const consoleFile = join(ARTIFACTS_DIR, `${name}-browser-console.log`);
    await writeFile(consoleFile, `${page.consoleErrors.join('\n')}\n`);
    saved.push(consoleFile);
  }
  const serverLog = join(ARTIFACTS_DIR, `${name}-code-server.log`);
  await cp(server.logFile, serverLog);
  saved.push(serverLog);
  // VS Code's own logs, the extension host's output channels among them.
  const vscodeLogs = join(ARTIFACTS_DIR, `${name}-vscode-logs`);
  await rm(vscodeLogs, { recursive: true, force: true });
  await cp(join(server.userDataDir, 'logs'), vscodeLogs, { recursive: true }).catch(() => {});
  saved.push(vscodeLogs);
  return saved;
}

/**
 * Start code-server with options (see startCodeServer), open its workbench
 * in Chromium, run body({ server, page, context, timings }) and then stop
 * Chromium and code-server's whole process group, whatever body did.
 *
 * When body throws, a screenshot, the browser console errors, the
 * code-server log and VS Code's logs are saved to test-artifacts/e2e/ under
 * names starting with name. The temporary folder that contains the user-data,
 * extensions and home folders is deleted unless BGRUN_E2E_KEEP=1.
 */
export async function withWorkbench(name, options, body) {
  const timings = {};
  let started = Date.now();
  const server = await startCodeServer(options);
  timings.codeServerMs = Date.now() - started;
  timings.codeServerListenMs = server.startMs;

  let browser;
  try {
    started = Date.now();
    browser = await openWorkbench(server.workbenchUrl, join(server.rootDir, 'chromium'));
    timings.workbenchMs = Date.now() - started;
    await body({ server, page: browser.page, context: browser.context, timings });
  } catch (error) {
    try {
      const saved = await saveFailureArtifacts(name, server, browser?.page);
      error.message += `\nartifacts: ${saved.join(', ')}`;
    } catch (artifactError) {
      error.message += `\nsaving artifacts failed: ${artifactError.message}`;
    }
    throw error;
  } finally {
    // Playwright starts Chromium in a process group of its own and ends that
    // group on close().
    await browser?.context.close();
    await server.stop();
    if (process.env.BGRUN_E2E_KEEP !== '1') {
      await rm(server.rootDir, { recursive: true, force: true });
    }
  }
}
