#!/usr/bin/env bash
# Set up .venv with the backend, its language server included so that bgrun.python can name this
# venv, and the example's dependencies. Then run the example training job in the background with
# the default one-second timer and follow its log to the footer.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e './pyserver[server]' -r examples/requirements.txt

.venv/bin/bgrun run --follow --category training --environment .venv -- python examples/train_digits.py
