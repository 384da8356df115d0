#!/usr/bin/env bash
# Stop the cluster that up.sh started in STATE_DIR. Cancel its jobs, kill
# the job processes that scancel could not end, then stop slurmd, slurmctld,
# slurmdbd, mariadbd and munged by the PIDs that up.sh and restart-ctld.sh
# recorded in STATE_DIR/run. Signals go only to those PIDs and to the job
# processes that this cluster's slurmstepd reports, never to processes found
# by name.
#
# Usage: .ci/slurm/down.sh STATE_DIR
#
# STATE_DIR stays, with its logs, for the caller to read or delete. Exits 1
# if a process of this cluster is still running at the end.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

# Cancel every job that has not finished and wait until squeue lists none.
# Needs a running slurmctld.
cancel_jobs() {
    local job_ids deadline start
    recorded_pid slurmctld >/dev/null || return 0
    job_ids=$(squeue -h -o '%A') || return 0
    [[ -n $job_ids ]] || return 0

    start=$(now_us)
    log "cancelling jobs: $(tr '\n' ' ' <<<"$job_ids")"
    # shellcheck disable=SC2086
    scancel $job_ids || true
    deadline=$((SECONDS + CI_SLURM_TIMEOUT))
    while [[ -n $(squeue -h -o '%A' 2>/dev/null) ]]; do
        if ((SECONDS >= deadline)); then
            log "jobs still listed by squeue ${CI_SLURM_TIMEOUT}s after scancel"
            return 0
        fi
        sleep 0.1
    done
    log "cancelled jobs in $(elapsed_s "$start" "$(now_us)")s"
}

# Print the PIDs of slurmstepd processes that listen on a socket in this
# cluster's SlurmdSpoolDir, one a line.
stepd_pids() {
    ss -Hxlp 2>/dev/null | awk -v spool="$STATE_DIR/spool/" \
        'index($5, spool) == 1 && match($0, /pid=[0-9]+/) {
             print substr($0, RSTART + 4, RLENGTH - 4)
         }' | sort -u
}

# Kill job processes and slurmstepd processes that are left when slurmctld
# was not running to cancel their jobs, or the jobs did not end in time.
# slurmstepd reports its job processes to scontrol listpids through its
# socket in SlurmdSpoolDir, which works without slurmctld and slurmd.
kill_leftover_jobs() {
    local pids pid comm
    pids=$(scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }') || true
    pids+=" $(stepd_pids)"
    for pid in $pids; do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        kill -KILL "$pid" 2>/dev/null && log "killed leftover job process $pid ($comm)"
    done
}

main() {
    [[ $# -eq 1 ]] || die "usage: $0 STATE_DIR"
    require_state_dir "$1"

    cancel_jobs
    kill_leftover_jobs
    # slurmctld sends its last job records to slurmdbd as it stops, and
    # slurmdbd writes them to MariaDB, so stop them in that order.
    stop_daemons slurmd slurmctld
    stop_daemons slurmdbd
    stop_daemons mariadbd munged
    # A daemon stopped by SIGKILL leaves its own PID file behind.
    rm -f "$STATE_DIR"/run/*.daemon.pid

    local leftover
    leftover=$(stepd_pids | tr '\n' ' ')
    if [[ -n ${leftover// /} ]]; then
        die "slurmstepd processes still running: $leftover"
    fi
    log "cluster in $STATE_DIR stopped"
}

main "$@"
