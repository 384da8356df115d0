#!/usr/bin/env bash
# Install Slurm and MUNGE from Debian and start a single-node cluster on
# localhost: munged, slurmctld and slurmd, all running as root without
# systemd, with every config, state, spool, PID and log file in STATE_DIR.
#
# Usage: eval "$(.ci/slurm/up.sh STATE_DIR)"
#
# Stdout carries only `export SLURM_CONF=...`, which STATE_DIR/env.sh also
# contains. Progress and errors go to stderr. Stop the cluster with
# .ci/slurm/down.sh STATE_DIR.
#
# Environment (all optional):
#   CI_SLURM_TIMEOUT       seconds to wait for each daemon (default 60)
#   CI_SLURM_CTLD_PORT     slurmctld TCP port (default 6817)
#   CI_SLURM_SLURMD_PORT   slurmd TCP port (default 6818)
#   CI_SLURM_MIN_JOB_AGE   seconds a finished job stays visible to
#                          scontrol and squeue (default 600)
#   CI_SLURM_CPUS          CPUs to declare for the node instead of the
#                          count slurmd -C reports, so that more jobs run
#                          at once than the machine has cores
# Root is required, because the daemons run as root and apt-get installs.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

PACKAGES=(slurmctld slurmd slurm-client munge iproute2)
CTLD_PORT=${CI_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${CI_SLURM_SLURMD_PORT:-6818}
MIN_JOB_AGE=${CI_SLURM_MIN_JOB_AGE:-600}
# Daemons that this run started, to stop again if the run fails.
STARTED=()

packages_installed() {
    local package status
    for package in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) || return 1
        [[ $status == "install ok installed" ]] || return 1
    done
}

apt_update() {
    apt-get update -q -o DPkg::Lock::Timeout=300 >>"$APT_LOG" 2>&1
}

# DPkg::Lock::Timeout waits for another apt-get or dpkg on the machine to
# finish instead of failing at once.
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 \
        "${PACKAGES[@]}" >>"$APT_LOG" 2>&1
}

# Install the packages unless they are installed already. apt-get update runs
# only when apt has no candidate for slurmctld, or when an install with the
# current package lists fails, for example on a mirror that dropped an old
# version.
install_packages() {
    local start policy
    start=$(now_us)
    if packages_installed; then
        log "packages already installed: ${PACKAGES[*]}"
        return 0
    fi

    # Capture the output before matching it, because with pipefail a pipe
    # into grep -q fails whenever grep exits early and apt-cache gets SIGPIPE.
    policy=$(apt-cache policy slurmctld 2>/dev/null)
    if [[ $policy != *"Candidate: "[0-9]* ]]; then
        apt_update || { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed. See $APT_LOG"; }
    fi
    if ! apt_install; then
        log "apt-get install failed. Running apt-get update and retrying"
        apt_update || { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed. See $APT_LOG"; }
        apt_install || { tail -n 20 "$APT_LOG" >&2; die "apt-get install ${PACKAGES[*]} failed. See $APT_LOG"; }
    fi
    log "installed ${PACKAGES[*]} in $(elapsed_s "$start" "$(now_us)")s"
}

# munged rejects a socket unless its folder and every parent folder are
# executable by all users (MUNGE 0.5.15: "execute permissions for all
# required"). Make STATE_DIR itself 0755 and reject a parent that is not.
check_munge_path() {
    local dir
    chmod 0755 "$STATE_DIR"
    dir=$(dirname "$STATE_DIR")
    while [[ $dir != / ]]; do
        if ! ((8#$(stat -c '%a' "$dir") & 1)); then
            die "folder $dir is not executable by all users, so munged rejects its socket under $STATE_DIR. Use another STATE_DIR or run chmod o+x $dir"
        fi
        dir=$(dirname "$dir")
    done
}

port_in_use() {
    [[ -n $(ss -Htln "sport = :$1") ]]
}

# Print the node's hardware line from slurmd -C without its NodeName, for
# example "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2
# ThreadsPerCore=1 RealMemory=24105". With CI_SLURM_CPUS set, print only
# CPUs and RealMemory, and write_slurm_conf adds
# SlurmdParameters=config_overrides so that slurmd accepts the higher count.
node_hardware() {
    local line
    line=$(slurmd -C)
    line=${line%%$'\n'*}
    if [[ -n ${CI_SLURM_CPUS:-} ]]; then
        [[ $CI_SLURM_CPUS =~ ^[1-9][0-9]*$ ]] || die "invalid CI_SLURM_CPUS '$CI_SLURM_CPUS': expected a positive integer"
        printf 'CPUs=%s %s\n' "$CI_SLURM_CPUS" "$(grep -o 'RealMemory=[0-9]*' <<<"$line")"
    else
        printf '%s\n' "${line#NodeName=* }"
    fi
}

write_slurm_conf() {
    local hardware overrides=""
    hardware=$(node_hardware)
    [[ -n ${CI_SLURM_CPUS:-} ]] && overrides="SlurmdParameters=config_overrides"
    cat >"$SLURM_CONF" <<EOF
# Single-node test cluster written by .ci/slurm/up.sh for Slurm 22.05.
ClusterName=ci
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root

# MUNGE runs from STATE_DIR, so point Slurm at its socket there.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE_DIR/munge/munge.socket.2

StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/run/slurmctld.daemon.pid
SlurmdPidFile=$STATE_DIR/run/slurmd.daemon.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log

# No cgroups, no systemd and no slurmdbd on CI machines.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/log/jobcomp.log

# Finished jobs stay visible to scontrol show job for MinJobAge seconds.
MinJobAge=$MIN_JOB_AGE
# slurmctld starts pending batch jobs from a loop that runs once a second,
# and by default at most every 3 s (batch_sched_delay=3). Slurm 22.05 reads
# this value in its first scheduling pass only, so a job submitted in the
# first 3 s after slurmctld starts still waits until 3 s after the start.
SchedulerParameters=batch_sched_delay=0
JobRequeue=0
ReturnToService=2
# The default /bin/mail is not installed, and slurmctld logs an error for it.
MailProg=/bin/true
# Seconds between SIGTERM and SIGKILL when a job is cancelled (default 30).
KillWait=5

# One core per job by default, so several jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
$overrides
NodeName=localhost NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

write_env_file() {
    printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" >"$STATE_DIR/env.sh"
}

start_munged() {
    local dir=$STATE_DIR/munge
    # In the foreground, munged logs to stderr, which start_daemon sends to
    # log/munged.console.log.
    [[ -f $dir/munge.key ]] || mungekey --create --keyfile="$dir/munge.key" 2>>"$STATE_DIR/log/munged.console.log"
    start_daemon munged munged --foreground \
        --key-file="$dir/munge.key" \
        --socket="$dir/munge.socket.2" \
        --pid-file="$STATE_DIR/run/munged.daemon.pid" \
        --seed-file="$dir/munged.seed"
    wait_until munged munge_ready || die "munged did not start. See $STATE_DIR/log/munged.console.log"
}

# -N localhost names the node, because the host name matches no NodeName.
# Without -N, slurmd 22.05 also falls back to NodeName=localhost.
start_slurmd() {
    start_daemon slurmd slurmd -D -f "$SLURM_CONF" -N localhost
    if ! wait_until slurmd node_ready; then
        scontrol show node localhost >&2 || true
        die "node localhost did not become ready. See $STATE_DIR/log/slurmd.log"
    fi
}

stop_started_on_failure() {
    local status=$?
    if ((status != 0 && ${#STARTED[@]} > 0)); then
        log "stopping the daemons this run started: ${STARTED[*]}. Logs stay in $STATE_DIR/log"
        stop_daemons "${STARTED[@]}"
    fi
}

main() {
    [[ $# -eq 1 && -n $1 ]] || die "usage: $0 STATE_DIR"
    [[ $(id -u) -eq 0 ]] || die "up.sh must run as root, because the daemons run as root and apt-get installs packages"
    mkdir -p "$1"
    STATE_DIR=$(cd "$1" && pwd -P)
    export SLURM_CONF=$STATE_DIR/slurm.conf
    mkdir -p "$STATE_DIR"/{run,munge,ctld,spool,log}
    chmod 0755 "$STATE_DIR/munge"
    APT_LOG=$STATE_DIR/log/apt.log
    for port in "$CTLD_PORT" "$SLURMD_PORT"; do
        if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
            die "invalid port '$port' in CI_SLURM_CTLD_PORT or CI_SLURM_SLURMD_PORT: expected 1 to 65535"
        fi
    done
    [[ $MIN_JOB_AGE =~ ^[0-9]+$ ]] || die "invalid CI_SLURM_MIN_JOB_AGE '$MIN_JOB_AGE': expected seconds, 0 or more"

    install_packages
    check_munge_path

    local start running=""
    start=$(now_us)
    for daemon in munged slurmctld slurmd; do
        recorded_pid "$daemon" >/dev/null && running+=" $daemon"
    done
    if [[ -n $running ]]; then
        # A running daemon read the existing slurm.conf, so keep it.
        log "already running:$running. Keeping $SLURM_CONF"
    else
        port_in_use "$CTLD_PORT" && die "port $CTLD_PORT is in use. Stop that process or set CI_SLURM_CTLD_PORT"
        port_in_use "$SLURMD_PORT" && die "port $SLURMD_PORT is in use. Stop that process or set CI_SLURM_SLURMD_PORT"
        write_slurm_conf
    fi
    write_env_file

    trap stop_started_on_failure EXIT
    if ! recorded_pid munged >/dev/null; then
        STARTED+=(munged)
        start_munged
    fi
    if ! recorded_pid slurmctld >/dev/null; then
        STARTED+=(slurmctld)
        start_slurmctld
    fi
    if ! recorded_pid slurmd >/dev/null; then
        STARTED+=(slurmd)
        start_slurmd
    fi
    if ! wait_until slurmd node_ready; then
        scontrol show node localhost >&2 || true
        die "node localhost is not ready. See $STATE_DIR/log/slurmd.log"
    fi
    log "cluster up in $(elapsed_s "$start" "$(now_us)")s with SLURM_CONF=$SLURM_CONF"

    cat "$STATE_DIR/env.sh"
}

main "$@"
