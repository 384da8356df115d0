#!/usr/bin/env bash
# Restart slurmctld of the cluster that up.sh started in STATE_DIR, as a
# controller restart or crash would in production. slurmctld recovers jobs,
# including running and finished ones, from StateSaveLocation, and running
# jobs go on under slurmd meanwhile.
#
# Usage: .ci/slurm/restart-ctld.sh STATE_DIR
#
# Stops slurmctld by its recorded PID with SIGTERM, or SIGKILL after
# CI_SLURM_TIMEOUT seconds, starts it again and waits until scontrol ping
# answers and node localhost is ready.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

[[ $# -eq 1 ]] || die "usage: $0 STATE_DIR"
require_state_dir "$1"
recorded_pid munged >/dev/null || die "munged of $STATE_DIR is not running; run up.sh $STATE_DIR"

start=$(now_us)
stop_daemon slurmctld
start_slurmctld
if ! wait_until slurmctld node_ready; then
    scontrol show node localhost >&2 || true
    die "node localhost is not ready after the restart; see $STATE_DIR/log/slurmctld.log"
fi
log "restarted slurmctld (pid $(<"$STATE_DIR/run/slurmctld.pid")) in $(elapsed_s "$start" "$(now_us)")s"
