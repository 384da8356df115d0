#!/usr/bin/env bash
# Set up everything the tests need and run every suite: the extension's build, unit tests and
# package with npm, the Python tests (engine, store, CLI, language server) with pytest, then the
# end-to-end tests of the packaged extension in code-server (scripts/e2e.sh; needs root for its
# network namespace).
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== extension: npm ci, build, unit tests, package"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
npm run --silent test:unit
npm run --silent package

echo "== backend: .venv with the pinned test dependencies"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e ./pyserver

echo "== backend: pytest"
.venv/bin/python -m pytest "$@"

echo "== extension: end-to-end tests in code-server"
bash scripts/e2e.sh
