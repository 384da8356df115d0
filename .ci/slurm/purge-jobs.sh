#!/usr/bin/env bash
# Remove the records of finished jobs from slurmctld of the cluster that
# up.sh started in STATE_DIR, so that scontrol show job and squeue no longer
# find them, as after MinJobAge in production. Slurm 22.05 has no command to
# purge one job record, so this sets MinJobAge=1 in STATE_DIR/slurm.conf,
# runs scontrol reconfigure, waits until squeue lists no finished job, and
# then restores MinJobAge and reconfigures again.
#
# Usage: .ci/slurm/purge-jobs.sh STATE_DIR
#
# slurmctld purges from a loop that runs every max(10, MinJobAge) seconds
# when MinJobAge < 60, else every 60 s, so a job that finished just now can
# take about 10 s to go. Jobs that have not finished are kept.
# STATE_DIR/log/jobcomp.log keeps its lines for purged jobs.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

FINISHED_STATES=BOOT_FAIL,CANCELLED,COMPLETED,DEADLINE,FAILED,NODE_FAIL,OUT_OF_MEMORY,PREEMPTED,TIMEOUT

no_finished_jobs() {
    local job_ids
    job_ids=$(squeue -h -t "$FINISHED_STATES" -o '%A') || return 1
    [[ -z $job_ids ]]
}

set_min_job_age() {
    sed -i "s/^MinJobAge=.*/MinJobAge=$1/" "$SLURM_CONF"
    scontrol reconfigure
}

[[ $# -eq 1 ]] || die "usage: $0 STATE_DIR"
require_state_dir "$1"
recorded_pid slurmctld >/dev/null || die "slurmctld of $STATE_DIR is not running; run up.sh $STATE_DIR"
original=$(sed -n 's/^MinJobAge=//p' "$SLURM_CONF")
[[ -n $original ]] || die "no MinJobAge line in $SLURM_CONF"

start=$(now_us)
trap 'set_min_job_age "$original"' EXIT
set_min_job_age 1
wait_until slurmctld no_finished_jobs || die "finished jobs still listed by squeue -t $FINISHED_STATES"
log "purged finished jobs in $(elapsed_s "$start" "$(now_us)")s"
