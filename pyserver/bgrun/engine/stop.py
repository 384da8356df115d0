"""Stopping a job: its whole process tree, with SIGTERM first and SIGKILL after a grace period.

The tree is the job's main process, its descendants (even those that left its process group),
every process still in its process group or session, and every process whose environment contains
the job's marker (`BGRUN_JOB`, set by the supervisor), which finds a daemon that double-forked
into a session of its own unless it cleared its environment. A running job is stopped by signalling
that tree, and its supervisor records it as cancelled with the signal. A job still waiting for
its timer is stopped by signalling its supervisor, which then records the cancellation itself.
A job whose PID now belongs to another process is never signalled (see liveness.py).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any, Iterable

import psutil

from .. import schema
from ..errors import BgrunError, StopRefused
from ..store import Store
from . import liveness

log = logging.getLogger("bgrun.stop")

POLL_SECONDS = 0.05
# Environment variable that the supervisor gives each job; supervise.py sets the same name.
JOB_MARKER_VARIABLE = "BGRUN_JOB"
# How long to wait for the supervisor to record the outcome once the job's processes are gone.
RECORD_TIMEOUT = 15.0


def group_and_session_members(leader_pid: int) -> list[psutil.Process]:
    """Return the processes whose process group or session is the one `leader_pid` started."""
    members = []
    own = os.getpid()
    for process in psutil.process_iter():
        if process.pid == own:
            continue
        try:
            if os.getpgid(process.pid) == leader_pid or os.getsid(process.pid) == leader_pid:
                members.append(process)
        except (ProcessLookupError, PermissionError, OSError):
            continue
    return members


def job_marker(job: dict[str, Any]) -> str | None:
    """Return the value of the job's BGRUN_JOB variable: `<id>@<log root>`, as supervise.py builds it."""
    if not job.get("id") or not job.get("log_root"):
        return None
    return f"{job['id']}@{job['log_root']}"


def marked_processes(marker: str) -> list[psutil.Process]:
    """Return the processes whose environment at exec held BGRUN_JOB=`marker`."""
    if os.path.isdir("/proc/self"):
        return _marked_processes_from_proc(marker)
    members = []
    own = os.getpid()
    for process in psutil.process_iter():
        if process.pid == own:
            continue
        try:
            if process.environ().get(JOB_MARKER_VARIABLE) == marker:
                members.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return members


def _marked_processes_from_proc(marker: str) -> list[psutil.Process]:
    """Search the raw /proc/PID/environ bytes, which costs less than parsing each one with psutil."""
    needle = b"\0" + f"{JOB_MARKER_VARIABLE}={marker}".encode("utf-8", "surrogateescape") + b"\0"
    members = []
    own = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                environ = handle.read()
            if needle in b"\0" + environ:
                members.append(psutil.Process(int(entry.name)))
        except (OSError, psutil.NoSuchProcess):
            continue
    return members


def collect_tree(main: psutil.Process | None, leader_pid: int, marker: str | None = None) -> dict[int, psutil.Process]:
    """Return the job's main process, its descendants, its group and session members and the
    processes that carry its marker."""
    tree: dict[int, psutil.Process] = {}
    if main is not None:
        tree[main.pid] = main
        try:
            for child in main.children(recursive=True):
                tree[child.pid] = child
        except psutil.NoSuchProcess:
            pass
    for member in group_and_session_members(leader_pid):
        tree.setdefault(member.pid, member)
    if marker:
        for member in marked_processes(marker):
            tree.setdefault(member.pid, member)
    return tree


def signal_all(processes: Iterable[psutil.Process], signum: int) -> int:
    """Send `signum` to each process that still runs; return how many were signalled.

    SIGTERM is followed by SIGCONT, because a stopped process (SIGSTOP, Ctrl-Z) handles SIGTERM
    only once it runs again.
    """
    count = 0
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                process.send_signal(signum)
                if signum == signal.SIGTERM:
                    process.send_signal(signal.SIGCONT)
                count += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return count


def terminate_tree(tree: dict[int, psutil.Process], grace: float) -> int:
    """Send SIGTERM, wait up to `grace` seconds, then SIGKILL what is left; return the count."""
    processes = list(tree.values())
    count = signal_all(processes, signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace)
    alive = [p for p in alive if _running(p)]
    if alive:
        signal_all(alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
    return count


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_job(store: Store, job_id: str, grace: float | None = None, wait: bool = True) -> dict[str, Any]:
    """Stop a scheduled or running job and return its final record.

    Raises StopRefused when the job's recorded PID now belongs to another process.
    """
    job = store.get(job_id)
    if job["state"] in schema.FINAL_STATES:
        return job
    if job.get("backend") == "slurm":
        from ..backends import slurm

        return slurm.stop_job(store, job_id, grace=grace)
    grace = float(job.get("stop_grace") or 10.0) if grace is None else grace

    if job["state"] == schema.RUNNING:
        stranger = liveness.pid_reused(job.get("pid"), job.get("pid_create_time"))
        if stranger is not None:
            raise StopRefused(
                f"job {job_id} was not stopped: its PID {job['pid']} now belongs to another process "
                f"({stranger.name()!r}, started after the job), which was left alone; "
                f"run 'bgrun check --repair' to record the job's real state"
            )

    store.mark_cancel(job_id)
    log.info("job %s: stop requested (grace %.1f s)", job_id, grace)
    started = time.monotonic()
    deadline = started + grace
    tree: dict[int, psutil.Process] = {}
    supervisor_signalled = killed = False
    gone_since: float | None = None

    while True:
        job = store.get(job_id)
        if job["state"] in schema.FINAL_STATES or not wait:
            return job
        main = liveness.process_if_alive(job.get("pid"), job.get("pid_create_time")) \
            if job["state"] == schema.RUNNING else None
        supervisor = liveness.process_if_alive(job.get("supervisor_pid"), job.get("supervisor_create_time"))

        if main is not None or (job["state"] == schema.RUNNING and job.get("pid")):
            for pid, process in collect_tree(main, int(job["pid"]), job_marker(job)).items():
                if pid not in tree:
                    tree[pid] = process
                    signal_all([process], signal.SIGTERM)
            if time.monotonic() >= deadline and not killed:
                log.info("job %s: grace period over, sending SIGKILL", job_id)
                signal_all(tree.values(), signal.SIGKILL)
                killed = True
        elif supervisor is not None and not supervisor_signalled:
            supervisor.send_signal(signal.SIGTERM)
            supervisor_signalled = True

        if main is None and supervisor is None:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > 2.0:
                return _record_cancelled_without_supervisor(store, job_id)
        if time.monotonic() - started > grace + RECORD_TIMEOUT:
            raise BgrunError(
                f"job {job_id} did not reach a final state within {grace + RECORD_TIMEOUT:.0f} s of the "
                f"stop request; run 'bgrun check --repair' and 'bgrun show {job_id}'"
            )
        time.sleep(POLL_SECONDS)


def _record_cancelled_without_supervisor(store: Store, job_id: str) -> dict[str, Any]:
    """Record a cancellation when neither the job nor its supervisor is left to do it."""
    from .finish import finalise

    log.warning("job %s: no supervisor left; recording the cancellation directly", job_id)
    return finalise(store, job_id, schema.CANCELLED, reason="stopped; its supervisor was gone",
                    exit_code=None, signum=None, leftovers="not checked (no supervisor)")
