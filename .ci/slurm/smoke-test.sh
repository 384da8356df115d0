#!/usr/bin/env bash
# Check the test cluster end to end: up.sh, a job that succeeds, a job that
# exits 3, scancel of a running job, restart-ctld.sh with a job running
# across the restart, purge-jobs.sh, and down.sh. Also prints how long
# after sbatch each of a few jobs reached RUNNING.
#
# Usage: .ci/slurm/smoke-test.sh [STATE_DIR]
#
# STATE_DIR defaults to a new folder under /tmp, removed at the end when
# every check passed. Ends with the line "N passed, N failed" and exits 1
# if a check failed.
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

STATE_DIR=${1:-$(mktemp -d /tmp/slurm-ci.XXXXXX)}
OUT_DIR=$STATE_DIR/jobs
LATENCY_SAMPLES=${CI_SLURM_LATENCY_SAMPLES:-5}
passed=0
failed=0

check() {
    local description=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        log "ok: $description"
    else
        failed=$((failed + 1))
        log "FAILED: $description"
    fi
}

# Print field $2 (for example JobState) of scontrol show job -o for job $1.
job_field() {
    scontrol show job -o "$1" | grep -o "\b$2=[^ ]*" | cut -d= -f2-
}

job_finished() {
    [[ $(job_field "$1" JobState) =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$ ]]
}

job_running() {
    [[ $(job_field "$1" JobState) == RUNNING ]]
}

# Poll until job $1 satisfies predicate $2, for at most 30 s.
wait_job() {
    local deadline=$((SECONDS + 30))
    until "$2" "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

submit() {
    sbatch --parsable --output="$OUT_DIR/%j.out" "$@"
}

state_is() {
    [[ $(job_field "$1" JobState) == "$2" ]]
}

exit_code_is() {
    [[ $(job_field "$1" ExitCode) == "$2" ]]
}

file_is() {
    [[ -f $1 && $(<"$1") == "$2" ]]
}

no_job_listed() {
    ! scontrol show job -o "$1" >/dev/null 2>&1
}

measure_latency() {
    local i start job_id
    for ((i = 1; i <= LATENCY_SAMPLES; i++)); do
        # A random pause spreads submissions over slurmctld's 1 s loop.
        sleep "0.$((RANDOM % 10))"
        start=$(now_us)
        job_id=$(submit --wrap 'sleep 0.2')
        wait_job "$job_id" job_running || wait_job "$job_id" job_finished
        log "job $job_id RUNNING $(elapsed_s "$start" "$(now_us)")s after sbatch"
    done
}

no_process_running() {
    local pid
    for pid in "$@"; do
        process_running "$pid" && return 1
    done
    return 0
}

main() {
    local start up_output job_id cancel_id survivor_id daemon_pids
    # down.sh stops nothing when the cluster is stopped already, so it is
    # safe to run again on every exit.
    trap '"$SCRIPT_DIR/down.sh" "$STATE_DIR" >/dev/null 2>&1' EXIT
    start=$(now_us)
    up_output=$("$SCRIPT_DIR/up.sh" "$STATE_DIR") || { log "up.sh failed"; exit 1; }
    eval "$up_output"
    log "up.sh took $(elapsed_s "$start" "$(now_us)")s"
    mkdir -p "$OUT_DIR"
    check "env.sh sets SLURM_CONF" grep -q "SLURM_CONF=$STATE_DIR/slurm.conf" "$STATE_DIR/env.sh"

    # The first job after a slurmctld start waits for its first scheduling
    # pass, about 3 s after the start.
    start=$(now_us)
    job_id=$(submit --wrap 'sleep 0.5; echo hi')
    wait_job "$job_id" job_running
    log "first job $job_id RUNNING $(elapsed_s "$start" "$(now_us)")s after sbatch"
    check "echo job finishes" wait_job "$job_id" job_finished
    check "echo job COMPLETED" state_is "$job_id" COMPLETED
    check "echo job exit code 0:0" exit_code_is "$job_id" 0:0
    check "echo job output is hi" file_is "$OUT_DIR/$job_id.out" hi

    job_id=$(submit --wrap 'exit 3')
    check "failing job finishes" wait_job "$job_id" job_finished
    check "failing job FAILED" state_is "$job_id" FAILED
    check "failing job exit code 3:0" exit_code_is "$job_id" 3:0

    cancel_id=$(submit --wrap 'sleep 300')
    check "sleep job starts" wait_job "$cancel_id" job_running
    scancel "$cancel_id"
    check "cancelled job finishes" wait_job "$cancel_id" job_finished
    check "cancelled job CANCELLED" state_is "$cancel_id" CANCELLED

    survivor_id=$(submit --wrap 'sleep 3; echo survived')
    check "restart job starts" wait_job "$survivor_id" job_running
    check "restart-ctld.sh succeeds" "$SCRIPT_DIR/restart-ctld.sh" "$STATE_DIR"
    check "job from before the restart still listed" state_is "$job_id" FAILED
    check "job running across the restart finishes" wait_job "$survivor_id" job_finished
    check "job running across the restart COMPLETED" state_is "$survivor_id" COMPLETED
    check "job running across the restart output" file_is "$OUT_DIR/$survivor_id.out" survived
    job_id=$(submit --wrap 'echo after')
    check "job after the restart COMPLETED" wait_job "$job_id" job_finished
    check "job after the restart output" file_is "$OUT_DIR/$job_id.out" after

    measure_latency

    check "purge-jobs.sh succeeds" "$SCRIPT_DIR/purge-jobs.sh" "$STATE_DIR"
    check "purged job not listed" no_job_listed "$job_id"
    check "MinJobAge restored" grep -q '^MinJobAge=600$' "$STATE_DIR/slurm.conf"
    check "jobcomp.log keeps purged job" grep -q "JobId=$job_id " "$STATE_DIR/log/jobcomp.log"

    local last_id=$job_id
    job_id=$(submit --wrap 'sleep 300')
    check "job ID after the purge is new" test "$job_id" -gt "$((last_id + LATENCY_SAMPLES))"
    wait_job "$job_id" job_running
    daemon_pids=$(cat "$STATE_DIR"/run/{munged,slurmctld,slurmd}.pid)
    check "down.sh succeeds with a job running" "$SCRIPT_DIR/down.sh" "$STATE_DIR"
    # shellcheck disable=SC2086
    check "no daemon running after down.sh" no_process_running $daemon_pids
    check "no socket in STATE_DIR listening" bash -c "! ss -Hxl | grep -qF '$STATE_DIR/'"

    printf '%d passed, %d failed\n' "$passed" "$failed"
    if ((failed > 0)); then
        log "kept $STATE_DIR for its logs"
        exit 1
    fi
    [[ -n ${1:-} ]] || rm -rf "$STATE_DIR"
}

main "$@"
