#!/usr/bin/env bash
# Install Slurm and MUNGE from Debian and start a single-node cluster on
# localhost: munged, slurmctld and slurmd, all running as root without
# systemd, with every config, state, spool, PID and log file in STATE_DIR.
# With CI_SLURM_ACCOUNTING=1 it also installs and starts MariaDB and
# slurmdbd, with their data in STATE_DIR, so that sacct works.
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
#   CI_SLURM_ACCOUNTING    1 to add slurmdbd and MariaDB (default 0)
#   CI_SLURM_DBD_PORT      slurmdbd TCP port (default 6819)
#   CI_SLURM_MYSQL_PORT    MariaDB TCP port on 127.0.0.1 (default 6820, not
#                          3306, where a system MariaDB may listen)
# Root is required, because the daemons run as root and apt-get installs.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

PACKAGES=(slurmctld slurmd slurm-client munge iproute2)
ACCOUNTING_PACKAGES=(slurmdbd mariadb-server mariadb-client)
CTLD_PORT=${CI_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${CI_SLURM_SLURMD_PORT:-6818}
DBD_PORT=${CI_SLURM_DBD_PORT:-6819}
MYSQL_PORT=${CI_SLURM_MYSQL_PORT:-6820}
MIN_JOB_AGE=${CI_SLURM_MIN_JOB_AGE:-600}
ACCOUNTING=${CI_SLURM_ACCOUNTING:-0}
ACCOUNTING_DB=slurm_acct_db
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

# No cgroups and no systemd on CI machines.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
$(accounting_settings)
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

# Print the accounting lines of slurm.conf: slurmdbd on localhost in
# accounting mode, else none.
accounting_settings() {
    if [[ $ACCOUNTING == 1 ]]; then
        # For slurmdbd connections, Slurm 22.05 takes the MUNGE socket from
        # AccountingStoragePass, not from AuthInfo.
        printf '%s\n' "# Accounting through slurmdbd, which stores jobs in MariaDB (see slurmdbd.conf)." \
            "AccountingStorageType=accounting_storage/slurmdbd" \
            "AccountingStorageHost=localhost" \
            "AccountingStoragePort=$DBD_PORT" \
            "AccountingStoragePass=$STATE_DIR/munge/munge.socket.2"
    else
        printf '%s\n' "# No slurmdbd, so sacct does not work." "AccountingStorageType=accounting_storage/none"
    fi
}

# Succeed when slurm.conf in STATE_DIR sends accounting to slurmdbd.
conf_has_accounting() {
    grep -qx 'AccountingStorageType=accounting_storage/slurmdbd' "$SLURM_CONF" 2>/dev/null
}

# Run the SQL on stdin as MariaDB root through the socket in STATE_DIR. Root
# logs in by unix_socket authentication, which mariadb-install-db sets up.
run_sql_as_root() {
    mariadb --no-defaults --socket="$STATE_DIR/mysql/mysqld.sock" -u root
}

mariadb_ready() {
    mariadb-admin --no-defaults --socket="$STATE_DIR/mysql/mysqld.sock" -u root ping
}

# Create the data folder on the first start, then start mariadbd on
# 127.0.0.1:MYSQL_PORT and wait until it responds on its socket.
# --no-defaults keeps /etc/mysql/my.cnf out, and --user=root is needed
# because mariadbd otherwise refuses to run as root. A 16 MiB redo log in
# place of the default 96 MiB keeps STATE_DIR small.
start_mariadbd() {
    local dir=$STATE_DIR/mysql start
    if [[ ! -d $dir/data/mysql ]]; then
        start=$(now_us)
        mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
            --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve \
            >>"$STATE_DIR/log/mariadb-install-db.log" 2>&1 ||
            die "mariadb-install-db failed. See $STATE_DIR/log/mariadb-install-db.log"
        log "created the MariaDB data folder in $(elapsed_s "$start" "$(now_us)")s"
    fi
    start_daemon mariadbd mariadbd --no-defaults --user=root \
        --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" \
        --pid-file="$STATE_DIR/run/mariadbd.daemon.pid" \
        --log-error="$STATE_DIR/log/mariadbd.log" \
        --bind-address=127.0.0.1 --port="$MYSQL_PORT" --skip-name-resolve \
        --innodb-log-file-size=16M
    wait_until mariadbd mariadb_ready || die "mariadbd did not start. See $STATE_DIR/log/mariadbd.log"
}

# Create the accounting database and the user that slurmdbd logs in as, with
# a new random password each time slurmdbd.conf is written. slurmdbd connects
# over TCP, where unix_socket authentication does not apply.
create_accounting_db() {
    local password
    password=$(od -A n -t x1 -N 16 /dev/urandom | tr -d ' \n')
    run_sql_as_root <<EOF || die "could not create database $ACCOUNTING_DB. See $STATE_DIR/log/mariadbd.log"
CREATE DATABASE IF NOT EXISTS $ACCOUNTING_DB;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON $ACCOUNTING_DB.* TO 'slurm'@'127.0.0.1';
EOF
    write_slurmdbd_conf "$password"
}

# slurmdbd reads slurmdbd.conf from the folder of SLURM_CONF. The file
# contains the database password, so only its owner can read it.
write_slurmdbd_conf() {
    local file=$STATE_DIR/slurmdbd.conf
    (
        umask 077
        cat >"$file" <<EOF
# slurmdbd for the test cluster, written by .ci/slurm/up.sh for Slurm 22.05.
AuthType=auth/munge
AuthInfo=socket=$STATE_DIR/munge/munge.socket.2
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$STATE_DIR/log/slurmdbd.log
PidFile=$STATE_DIR/run/slurmdbd.daemon.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=$1
StorageLoc=$ACCOUNTING_DB
EOF
    )
}

dbd_ready() {
    sacctmgr -n -P list cluster format=cluster
}

# Start slurmdbd and wait until sacctmgr reaches it. slurmctld 22.05 adds
# its cluster ("ci") to the database when it registers, so no sacctmgr add
# cluster is needed.
start_slurmdbd() {
    start_daemon slurmdbd slurmdbd -D
    wait_until slurmdbd dbd_ready || die "slurmdbd did not start. See $STATE_DIR/log/slurmdbd.log"
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

# Keep slurm.conf and slurmdbd.conf, because the running daemons $1 read
# them, and take the accounting mode and ports from them instead of from the
# environment.
keep_running_config() {
    log "already running:$1. Keeping $SLURM_CONF"
    if conf_has_accounting; then
        ACCOUNTING=1
        DBD_PORT=$(sed -n 's/^AccountingStoragePort=//p' "$SLURM_CONF")
        if [[ -f $STATE_DIR/slurmdbd.conf ]]; then
            MYSQL_PORT=$(sed -n 's/^StoragePort=//p' "$STATE_DIR/slurmdbd.conf")
        fi
    else
        ACCOUNTING=0
    fi
    if [[ $ACCOUNTING != "${CI_SLURM_ACCOUNTING:-0}" ]]; then
        log "CI_SLURM_ACCOUNTING=${CI_SLURM_ACCOUNTING:-0} ignored: the running cluster has accounting=$ACCOUNTING. Run down.sh first to change it"
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
    for port in "$CTLD_PORT" "$SLURMD_PORT" "$DBD_PORT" "$MYSQL_PORT"; do
        if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
            die "invalid port '$port' in CI_SLURM_CTLD_PORT, CI_SLURM_SLURMD_PORT, CI_SLURM_DBD_PORT or CI_SLURM_MYSQL_PORT: expected 1 to 65535"
        fi
    done
    [[ $MIN_JOB_AGE =~ ^[0-9]+$ ]] || die "invalid CI_SLURM_MIN_JOB_AGE '$MIN_JOB_AGE': expected seconds, 0 or more"
    [[ $ACCOUNTING =~ ^[01]$ ]] || die "invalid CI_SLURM_ACCOUNTING '$ACCOUNTING': expected 0 or 1"

    local start running=""
    for daemon in munged mariadbd slurmdbd slurmctld slurmd; do
        recorded_pid "$daemon" >/dev/null && running+=" $daemon"
    done
    if [[ -n $running ]]; then
        keep_running_config "$running"
    fi
    if [[ $ACCOUNTING == 1 ]]; then
        PACKAGES+=("${ACCOUNTING_PACKAGES[@]}")
    fi

    install_packages
    check_munge_path

    start=$(now_us)
    if [[ -z $running ]]; then
        port_in_use "$CTLD_PORT" && die "port $CTLD_PORT is in use. Stop that process or set CI_SLURM_CTLD_PORT"
        port_in_use "$SLURMD_PORT" && die "port $SLURMD_PORT is in use. Stop that process or set CI_SLURM_SLURMD_PORT"
        if [[ $ACCOUNTING == 1 ]]; then
            port_in_use "$DBD_PORT" && die "port $DBD_PORT is in use. Stop that process or set CI_SLURM_DBD_PORT"
            port_in_use "$MYSQL_PORT" && die "port $MYSQL_PORT is in use. Stop that process or set CI_SLURM_MYSQL_PORT"
        fi
        write_slurm_conf
    fi
    write_env_file

    trap stop_started_on_failure EXIT
    if ! recorded_pid munged >/dev/null; then
        STARTED+=(munged)
        start_munged
    fi
    # At its first start, slurmctld 22.05 exits with "we have no TRES from
    # it" unless slurmdbd responds, so start slurmdbd first.
    if [[ $ACCOUNTING == 1 ]]; then
        if ! recorded_pid mariadbd >/dev/null; then
            STARTED+=(mariadbd)
            start_mariadbd
        fi
        if ! recorded_pid slurmdbd >/dev/null; then
            STARTED+=(slurmdbd)
            create_accounting_db
            start_slurmdbd
        fi
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
