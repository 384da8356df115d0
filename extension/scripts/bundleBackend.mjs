// Copies the Python backend's sources (pyproject.toml, README.md and the bgrun package) into
// out/pyserver, which .vscodeignore ships in the .vsix; caches and build output stay behind.
// Usage: node extension/scripts/bundleBackend.mjs
import { cpSync, existsSync, rmSync } from "node:fs";
import { basename, join } from "node:path";

const source = "pyserver";
const target = join("out", "pyserver");
const skipped = new Set(["__pycache__", "build", "dist", ".pytest_cache"]);

for (const required of ["pyproject.toml", "README.md", "bgrun"]) {
  if (!existsSync(join(source, required))) {
    console.error(`bundleBackend: ${join(source, required)} is missing; run this from the repository root.`);
    process.exit(1);
  }
}

rmSync(target, { recursive: true, force: true });
for (const entry of ["pyproject.toml", "README.md", "bgrun"]) {
  cpSync(join(source, entry), join(target, entry), {
    recursive: true,
    filter: (path) => {
      const name = basename(path);
      return !skipped.has(name) && !name.endsWith(".egg-info") && !name.endsWith(".pyc");
    },
  });
}
console.log(`bundleBackend: copied the backend to ${target}`);
