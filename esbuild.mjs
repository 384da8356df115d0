// Bundles the extension into out/extension.js, and with --tests each unit test into out/test/.
// Usage: node esbuild.mjs [--production] [--watch] [--tests]
import * as esbuild from "esbuild";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");
const tests = process.argv.includes("--tests");

// Prints each build's errors and warnings as file:line:column lines, and in watch mode the
// start and end markers that the background problem matcher in .vscode/tasks.json waits for.
const reportProblems = {
  name: "report-problems",
  setup(build) {
    build.onStart(() => {
      if (watch) {
        console.log("[watch] build started");
      }
    });
    build.onEnd((result) => {
      for (const { text, location } of [...result.errors, ...result.warnings]) {
        if (location) {
          console.error(`${location.file}:${location.line}:${location.column}: ${text}`);
        } else {
          console.error(text);
        }
      }
      if (watch) {
        console.log("[watch] build finished");
      }
    });
  },
};

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: !production,
  logLevel: "silent",
  plugins: [reportProblems],
};

async function buildExtension() {
  const context = await esbuild.context({
    ...common,
    entryPoints: ["extension/extension.ts"],
    outfile: "out/extension.js",
    // The vscode module exists only inside the extension host.
    external: ["vscode"],
    minify: production,
    sourcesContent: false,
  });
  if (watch) {
    await context.watch();
    return;
  }
  const result = await context.rebuild();
  await context.dispose();
  if (result.errors.length > 0) {
    process.exit(1);
  }
}

async function buildTests() {
  const folder = join("extension", "test");
  const entryPoints = readdirSync(folder)
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => join(folder, name));
  rmSync(join("out", "test"), { recursive: true, force: true });
  // vscode stays unresolved on purpose: a unit test that imports it fails at once, which keeps
  // the tested modules free of the VS Code API.
  const result = await esbuild.build({
    ...common,
    entryPoints,
    outdir: join("out", "test"),
    external: ["vscode"],
    plugins: [],
    logLevel: "warning",
  });
  if (result.errors.length > 0) {
    process.exit(1);
  }
}

await (tests ? buildTests() : buildExtension());
