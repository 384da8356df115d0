# shellcheck shell=bash
# Shared helpers for up.sh, down.sh, restart-ctld.sh and purge-jobs.sh.
# Source this file after setting STATE_DIR to an absolute path.
#
# Layout of STATE_DIR:
#   slurm.conf  env.sh
#   run/        NAME.pid written by these scripts, one per daemon, and
#               NAME.daemon.pid written by the daemons themselves
#   munge/      munged key, socket and seed file
#   mysql/      MariaDB data folder and socket (accounting mode only)
#   ctld/       slurmctld StateSaveLocation
#   spool/      slurmd SlurmdSpoolDir
#   log/        daemon logs, console output, jobcomp.log and apt.log

# Seconds to wait for a daemon to become ready or to exit.
CI_SLURM_TIMEOUT=${CI_SLURM_TIMEOUT:-60}

log() {
    printf 'slurm-ci: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Print microseconds since the epoch, from bash's EPOCHREALTIME.
now_us() {
    local t=${EPOCHREALTIME/./}
    printf '%s\n' "$t"
}

# Print the seconds between two now_us readings with millisecond precision.
elapsed_s() {
    local us=$(($2 - $1))
    printf '%d.%03d\n' $((us / 1000000)) $(((us % 1000000) / 1000))
}

require_state_dir() {
    [[ -n ${1:-} ]] || die "missing STATE_DIR argument. Usage: $0 STATE_DIR"
    [[ -d $1 ]] || die "STATE_DIR $1 not found. Run up.sh $1 first"
    STATE_DIR=$(cd "$1" && pwd -P)
    export SLURM_CONF=$STATE_DIR/slurm.conf
    [[ -f $SLURM_CONF ]] || die "$SLURM_CONF not found. Run up.sh $STATE_DIR first"
}

# Succeed if process $1 exists and is not a zombie. A daemon whose parent
# exited is reparented, and a zombie lasts until the new parent reaps it.
process_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# Print the PID recorded for daemon $1 if that process is still the daemon
# started for this STATE_DIR, so that a reused PID is never signalled.
# Returns 1 when no such process is running. A daemon belongs to STATE_DIR
# when its command line names a path in it, or, for slurmdbd, which takes no
# config option, when the SLURM_CONF it was started with does.
recorded_pid() {
    local name=$1 pid_file=$STATE_DIR/run/$1.pid pid comm
    [[ -f $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    process_running "$pid" || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE_DIR/"; then
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF -- "SLURM_CONF=$STATE_DIR/slurm.conf" || return 1
    fi
    printf '%s\n' "$pid"
}

# Start daemon $1 in the foreground mode given by the remaining arguments,
# detached in its own session, and record its PID in run/$1.pid.
# Output goes to log/$1.console.log so that a caller reading this script's
# stdout through a pipe or $(...) is not held open by the daemon.
start_daemon() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$STATE_DIR/log/$name.console.log" 2>&1 &
    printf '%s\n' "$!" >"$STATE_DIR/run/$name.pid"
}

# Send SIGTERM to the named daemons by their recorded PIDs, all at once, and
# wait until they exit. Send SIGKILL to any still running after
# CI_SLURM_TIMEOUT seconds.
stop_daemons() {
    local name pid deadline start
    local -A pids=()
    start=$(now_us)
    for name in "$@"; do
        if pid=$(recorded_pid "$name"); then
            pids[$name]=$pid
            kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$STATE_DIR/run/$name.pid"
    done

    deadline=$((SECONDS + CI_SLURM_TIMEOUT))
    for name in "${!pids[@]}"; do
        pid=${pids[$name]}
        while process_running "$pid"; do
            if ((SECONDS >= deadline)); then
                log "$name (pid $pid) still running ${CI_SLURM_TIMEOUT}s after SIGTERM. Sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.05
        done
        log "stopped $name (pid $pid) $(elapsed_s "$start" "$(now_us)")s after SIGTERM"
    done
}

# Poll command "$@" every 0.1 s until it succeeds. Return 1 after
# CI_SLURM_TIMEOUT seconds, or at once if daemon $1 exited.
wait_until() {
    local name=$1 deadline=$((SECONDS + CI_SLURM_TIMEOUT)) pid
    shift
    pid=$(<"$STATE_DIR/run/$name.pid")
    until "$@" >/dev/null 2>&1; do
        # process_running and not recorded_pid, because right after
        # start_daemon the process may still be setsid, before it executes
        # the daemon.
        if ! process_running "$pid"; then
            log "$name exited during startup; last lines of its logs:"
            tail -n 20 "$STATE_DIR/log/$name.console.log" "$STATE_DIR/log/$name.log" >&2 2>/dev/null
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "timed out after ${CI_SLURM_TIMEOUT}s waiting for $name: $*"
            return 1
        fi
        sleep 0.1
    done
}

munge_ready() {
    munge -n -S "$STATE_DIR/munge/munge.socket.2" | unmunge -S "$STATE_DIR/munge/munge.socket.2"
}

ctld_ready() {
    scontrol ping | grep -q 'is UP'
}

# Succeed when slurmctld reports node localhost as responding and usable:
# idle, or running jobs (mixed, allocated). Not responding adds a "*".
node_ready() {
    [[ $(sinfo -h -N -n localhost -o '%T') =~ ^(idle|mixed|allocated)$ ]]
}

# Start slurmctld and wait until scontrol ping reports it UP.
start_slurmctld() {
    start_daemon slurmctld slurmctld -D -f "$SLURM_CONF"
    if ! wait_until slurmctld ctld_ready; then
        die "scontrol ping did not report slurmctld UP. See $STATE_DIR/log/slurmctld.log"
    fi
}

# Stop slurmctld by its recorded PID and start it again. On SIGTERM,
# slurmctld writes all state to StateSaveLocation, and on start it recovers
# jobs from there, so running jobs go on and finished ones stay listed.
restart_slurmctld() {
    stop_daemons slurmctld
    start_slurmctld
    if ! wait_until slurmctld node_ready; then
        scontrol show node localhost >&2 || true
        die "node localhost is not ready after the slurmctld restart. See $STATE_DIR/log/slurmctld.log"
    fi
}
