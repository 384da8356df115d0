#!/usr/bin/env bash
# Restart slurmctld of the cluster that up.sh started in STATE_DIR, as a
# controller restart would in production. slurmctld recovers jobs, running
# and finished, from StateSaveLocation, and running jobs go on under slurmd
# meanwhile.
#
# Usage: .ci/slurm/restart-ctld.sh STATE_DIR
#
# Stops slurmctld by its recorded PID with SIGTERM, or SIGKILL after
# CI_SLURM_TIMEOUT seconds, starts it again and waits until scontrol ping
# reports it UP and node localhost is ready. With no job running, that takes
# about 4 s, because the node stays UNKNOWN until slurmd registers again.
# Client commands run while slurmctld is down retry the connection, and
# sbatch and squeue succeeded after a 2 s outage.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

[[ $# -eq 1 ]] || die "usage: $0 STATE_DIR"
require_state_dir "$1"
recorded_pid munged >/dev/null || die "munged of $STATE_DIR is not running. Run up.sh $STATE_DIR"

start=$(now_us)
restart_slurmctld
log "restarted slurmctld (pid $(<"$STATE_DIR/run/slurmctld.pid")) in $(elapsed_s "$start" "$(now_us)")s"
