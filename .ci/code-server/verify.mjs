// Check that code-server starts and serves its workbench on 127.0.0.1.
//
// Usage: node verify.mjs CODE_SERVER_BIN
//
// Starts code-server the way the end-to-end tests do (tests/e2e/lib/code-server.mjs:
// its own process group, throwaway user-data, extensions and home folders),
// fetches the workbench page and the workbench.js it links to, then ends the
// process group. Exits 1 on failure. It imports only Node.js built-ins, so it
// runs before playwright-core is installed.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [bin] = process.argv.slice(2);
if (!bin) {
  console.error('usage: node verify.mjs CODE_SERVER_BIN');
  process.exit(2);
}
process.env.CODE_SERVER = bin;
const { startCodeServer } = await import('../../tests/e2e/lib/code-server.mjs');

async function fetchText(url) {
  const response = await fetch(url);
  const body = await response.text();
  if (!response.ok) throw new Error(`GET ${url} returned HTTP ${response.status}`);
  return body;
}

const workspace = await mkdtemp(join(tmpdir(), 'code-server-verify-'));
let server;
let failed = false;
try {
  server = await startCodeServer({ workspace });
  console.log(`code-server served /healthz ${(server.startMs / 1000).toFixed(1)} s after start`);

  const page = await fetchText(server.workbenchUrl);
  if (!page.includes('id="vscode-workbench-web-configuration"')) {
    throw new Error(`${server.workbenchUrl} is missing the workbench configuration element`);
  }
  const script = page.match(/src="([^"]*\/workbench\.js)"/);
  if (!script) throw new Error(`${server.workbenchUrl} links no workbench.js`);
  const workbenchJs = await fetchText(new URL(script[1], `${server.url}/`).href);
  console.log(`workbench page: ${page.length} bytes, workbench.js: ${workbenchJs.length} bytes`);
} catch (error) {
  failed = true;
  console.error(`verify.mjs: ${error.message}`);
  if (server) console.error(`code-server log (${server.logFile}):\n${await readFile(server.logFile, 'utf8')}`);
} finally {
  await server?.stop();
  if (server) await rm(server.rootDir, { recursive: true, force: true });
  await rm(workspace, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
