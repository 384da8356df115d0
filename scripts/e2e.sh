#!/usr/bin/env bash
# Run the extension's end-to-end tests: the one command CI calls.
#
# Usage: scripts/e2e.sh [node --test arguments, default: every tests/e2e/*.test.mjs]
#
# Outside the network namespace, it
#   1. installs code-server and Chromium with .ci/code-server/install.sh,
#   2. packages bgrun.vsix at the repository root when it is missing,
#   3. downloads a wheelhouse of the backend's dependencies (reused between runs),
#   4. creates a venv with the backend installed from ./pyserver,
#   5. installs Slurm and MUNGE from Debian for the Slurm scenario,
# then runs tests/e2e/run.sh, which has no network but loopback.
#
# Environment:
#   BGRUN_E2E_CACHE   cache folder (default ~/.cache/bgrun-e2e): code-server, wheelhouse, venv
#   BGRUN_E2E_TIMEOUT seconds before run.sh stops the whole run (default 900)
#   BGRUN_E2E_KEEP=1  keep each test's temporary folders
# Needs root (apt-get, unshare) and no standard input.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cache_dir=$(realpath -m "${BGRUN_E2E_CACHE:-$HOME/.cache/bgrun-e2e}")
export BGRUN_E2E_CACHE=$cache_dir
cd "$repo_root"
exec </dev/null

started=$SECONDS
step() { echo "e2e.sh: $* ($((SECONDS - started)) s)"; }

step "installing code-server into $cache_dir"
.ci/code-server/install.sh "$cache_dir"

if [[ ! -f bgrun.vsix ]]; then
  step "packaging bgrun.vsix"
  npm ci --no-audit --no-fund
  npm run package
fi

# The wheelhouse that the offline setup test installs the backend from, with
# PIP_NO_INDEX=1, inside the namespace. pip rebuilds it only when the requirement list changes.
wheelhouse="$cache_dir/wheelhouse"
requirements=(psutil 'pygls>=2.1,<2.2' 'lsprotocol>=2025.0.0' cattrs attrs typing_extensions
  'watchdog>=4' 'setuptools>=68' wheel tomli)
stamp="$wheelhouse/.requirements"
if [[ ! -f $stamp || $(cat "$stamp") != "${requirements[*]}" ]]; then
  step "downloading the wheelhouse into $wheelhouse"
  rm -rf "$wheelhouse"
  mkdir -p "$wheelhouse"
  python3 -m pip download --quiet --dest "$wheelhouse" "${requirements[@]}"
  printf '%s' "${requirements[*]}" >"$stamp"
fi

# The venv that runs the backend in every scenario but the setup one, with this
# checkout's pyserver/ installed in editable mode. It is recreated when it
# cannot import the server or imports bgrun from another checkout.
venv="$cache_dir/backend-venv"
check_venv='import sys, bgrun.server, pygls, watchdog, psutil
sys.exit(0 if bgrun.__file__.startswith(sys.argv[1]) else 1)'
if ! "$venv/bin/python" -c "$check_venv" "$repo_root/pyserver/" 2>/dev/null; then
  step "creating the backend venv $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --find-links "$wheelhouse" -e "./pyserver[server]"
fi

# The Slurm scenario starts a cluster with .ci/slurm/up.sh inside the namespace, where apt-get
# cannot download, so its packages are installed here.
slurm_packages=(slurmctld slurmd slurm-client munge iproute2)
slurm_status=$(dpkg-query -W -f='${Status}\n' "${slurm_packages[@]}" 2>/dev/null || true)
if [[ $(grep -c '^install ok installed$' <<<"$slurm_status") -ne ${#slurm_packages[@]} ]]; then
  step "installing ${slurm_packages[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
    "${slurm_packages[@]}" >/dev/null ||
    { apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
        "${slurm_packages[@]}" >/dev/null; }
fi

export BGRUN_E2E_WHEELHOUSE=$wheelhouse
export BGRUN_E2E_BACKEND_PYTHON=$venv/bin/python
export BGRUN_E2E_VSIX=$repo_root/bgrun.vsix
step "running tests/e2e/run.sh"
status=0
tests/e2e/run.sh "$@" || status=$?
step "finished with exit status $status"
exit "$status"
