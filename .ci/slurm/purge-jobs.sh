#!/usr/bin/env bash
# Remove the records of finished jobs from slurmctld of the cluster that
# up.sh started in STATE_DIR, so that scontrol show job and squeue no longer
# find them, as happens after MinJobAge in production.
#
# Usage: .ci/slurm/purge-jobs.sh STATE_DIR
#
# Slurm 22.05 has no command that purges a job record. This script sets
# MinJobAge=1 in STATE_DIR/slurm.conf, runs scontrol reconfigure, waits until
# squeue lists no finished job, then restores MinJobAge and reconfigures
# again. Jobs that have not finished are kept, and STATE_DIR/log/jobcomp.log
# keeps its lines for purged jobs. Run it while no other client submits
# jobs, because of the job ID check below.
#
# A reconfigure makes slurmctld reload the next job ID from the header of
# StateSaveLocation/job_state, which slurmctld writes at most every 5 s. If
# that file predates the newest job and the job is then purged, Slurm gives
# its ID to the next job (seen with Slurm 22.05.8). So before each
# reconfigure this script waits until the saved next job ID is above every
# job ID it has seen.
#
# slurmctld purges every max(10, MinJobAge) seconds when MinJobAge < 60,
# else every 60 s. With the wait for the job_state file, a purge takes up
# to about 15 s.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

FINISHED_STATES=BOOT_FAIL,CANCELLED,COMPLETED,DEADLINE,FAILED,NODE_FAIL,OUT_OF_MEMORY,PREEMPTED,TIMEOUT
max_job_id_seen=0

no_finished_jobs() {
    local job_ids
    job_ids=$(squeue -h -t "$FINISHED_STATES" -o '%A') || return 1
    [[ -z $job_ids ]]
}

# Print job_id_sequence from the job_state header that Slurm 22.05 writes in
# dump_all_job_state(): packstr version (32-bit length, then the bytes),
# pack16 protocol version, pack_time (64 bits), pack32 job_id_sequence, all
# big-endian.
saved_job_id_sequence() {
    local file=$STATE_DIR/ctld/job_state version_length
    version_length=$(od -A n -t u4 --endian=big -N 4 "$file")
    od -A n -t u4 --endian=big -j $((4 + version_length + 2 + 8)) -N 4 "$file" | tr -d ' '
}

# Succeed when the job_state file names a next job ID above every job ID
# listed now or seen before, so a reconfigure cannot reuse an ID.
job_id_saved() {
    local listed
    listed=$(squeue -h -t all -o '%A' | sort -n | tail -n 1) || return 1
    if ((${listed:-0} > max_job_id_seen)); then
        max_job_id_seen=$listed
    fi
    [[ -f $STATE_DIR/ctld/job_state ]] || return 1
    (($(saved_job_id_sequence) > max_job_id_seen))
}

reconfigure_with_min_job_age() {
    sed -i "s/^MinJobAge=.*/MinJobAge=$1/" "$SLURM_CONF"
    wait_until slurmctld job_id_saved || die "job_state in $STATE_DIR/ctld still names a job ID at or below $max_job_id_seen as the next one"
    scontrol reconfigure
}

[[ $# -eq 1 ]] || die "usage: $0 STATE_DIR"
require_state_dir "$1"
recorded_pid slurmctld >/dev/null || die "slurmctld of $STATE_DIR is not running. Run up.sh $STATE_DIR"
original=$(sed -n 's/^MinJobAge=//p' "$SLURM_CONF")
[[ -n $original ]] || die "no MinJobAge line in $SLURM_CONF"

start=$(now_us)
trap 'reconfigure_with_min_job_age "$original"' EXIT
reconfigure_with_min_job_age 1
wait_until slurmctld no_finished_jobs || die "finished jobs still listed by squeue -t $FINISHED_STATES"
trap - EXIT
reconfigure_with_min_job_age "$original"
log "purged finished jobs in $(elapsed_s "$start" "$(now_us)")s"
