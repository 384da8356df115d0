#!/bin/sh
# Run the end-to-end tests in a private network namespace with only loopback
# up, so code-server, its extension host and Chromium reach nothing outside
# this machine. Arguments are passed to `node --test` (default: every
# *.test.mjs file here).
#
# The namespace also has its own PID namespace: when the test run ends, the
# kernel ends every process it left behind, whatever the tests did.
#
# Environment:
#   BGRUN_E2E_CACHE   folder given to .ci/code-server/install.sh (default ~/.cache/bgrun-e2e)
#   BGRUN_E2E_TIMEOUT seconds before the whole run is stopped (default 900)
#   BGRUN_E2E_KEEP=1  keep each test's code-server folders under $TMPDIR
set -eu
cd "$(dirname "$0")"

if [ ! -d node_modules/playwright-core ]; then
  echo "run.sh: playwright-core is missing; run 'npm ci' in tests/e2e or .ci/code-server/install.sh CACHE_DIR" >&2
  exit 1
fi

if [ "$#" -eq 0 ]; then
  set -- *.test.mjs
fi

# The shell is PID 1 of the new PID namespace, so the orphans it adopts (such
# as code-server's children once the main process exits) become zombies until
# it reaps them. `wait` reaps every child, not only the one it waits for.
#
# glibc's getaddrinfo with AI_ADDRCONFIG finds no IPv4 address, not even for
# "127.0.0.1", while the only IPv4 addresses are loopback ones, and Slurm 22.05
# resolves its hosts that way. So lo also gets 192.0.2.1, an address from
# TEST-NET-1 (RFC 5737); with no other interface, nothing leaves the namespace.
exec timeout --kill-after=10 "${BGRUN_E2E_TIMEOUT:-900}" \
  unshare --net --pid --fork --kill-child --mount-proc \
  sh -c 'ip link set lo up || exit 1
ip addr add 192.0.2.1/32 dev lo || exit 1
node --test --test-concurrency=1 "$@" &
wait $!' sh "$@"
