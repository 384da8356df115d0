"""Hooks that the light supervisor (supervise.py) runs for the steps that need the store.

- `started PID ATTEMPT START_EPOCH STATE_DIR JOB_ID`: record the job as running with its PID and
  start time.
- `after STATUS FAILURE STATE_DIR JOB_ID SUPERVISOR_ARGV…`: the attempt ended with the waitpid
  STATUS (FAILURE is the errno text of a failed exec, or empty). Record the attempt, stop its
  leftover processes, then either exec a new supervisor for the next attempt after the backoff,
  or finish the job.
- `cancelled-before-start STATE_DIR JOB_ID SUPERVISOR_ARGV…`: the job was stopped during its timer.
- `adopted PID STATE_DIR JOB_ID`: record the supervisor's PID, because its launcher died first.

A hook runs with `python -I -S`, so neither the job's PYTHONPATH nor its site-packages can break it;
any error it hits is written to `logs/errors/` with the job id.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

from .. import schema
from ..store import Store, now_iso
from . import liveness
from .errorlog import write_error_log
from .finish import end_attempt, finalise, iso_at
from .stop import collect_tree, job_marker, terminate_tree

log = logging.getLogger("bgrun.hooks")


def store_for(state_dir: str) -> Store:
    return Store(Path(state_dir).parent)


def on_started(pid: int, attempt: int, started_epoch: float, state_dir: str, job_id: str) -> None:
    store = store_for(state_dir)
    create_time = liveness.create_time_of(pid)
    started_at = iso_at(started_epoch)

    def apply(job: dict[str, Any]) -> None:
        job.update(state=schema.RUNNING, reason=None, pid=pid, pid_create_time=create_time, attempt=attempt)
        job["started_at"] = job.get("started_at") or started_at
        job["attempts"] = [a for a in job.get("attempts", []) if a.get("number") != attempt]
        job["attempts"].append({"number": attempt, "started_at": started_at, "pid": pid,
                                "ended_at": None, "state": schema.RUNNING, "exit_code": None, "signal": None})

    store.update(job_id, apply)


def on_adopted(pid: int, state_dir: str, job_id: str) -> None:
    """Record the supervisor's PID when the launcher died before it could."""
    create_time = liveness.create_time_of(pid)
    store_for(state_dir).update(job_id, lambda job: job.update(supervisor_pid=pid, supervisor_create_time=create_time))
    log.info("job %s: supervisor %s recorded itself after its launcher died", job_id, pid)


def decode_status(status: int) -> tuple[int | None, int | None]:
    """Return (exit code, signal number) from a waitpid status; exactly one is set."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def stop_leftovers(job: dict[str, Any]) -> str:
    """Stop (or only count) processes left in the job's group or session or carrying its marker;
    return the footer text."""
    pid = job.get("pid")
    if not pid:
        return "0"
    leftovers = collect_tree(None, int(pid), job_marker(job))
    if not leftovers:
        return "0"
    if not job.get("kill_leftovers", True):
        return f"{len(leftovers)} left running (kill_leftovers is off)"
    terminate_tree(leftovers, float(job.get("stop_grace") or 10.0))
    return f"{len(leftovers)} stopped"


def on_after(status: int, failure: str, state_dir: str, job_id: str, supervisor_argv: list[str]) -> None:
    store = store_for(state_dir)
    job = store.get(job_id)
    attempt = int(job.get("attempt") or 1)
    total = int(job.get("retries") or 0) + 1
    exit_code, signum = decode_status(status)
    cancelled = store.is_cancel_requested(job_id)
    outcome = "start failed" if failure else schema.describe_outcome({"exit_code": exit_code, "signal": signum})
    leftovers = stop_leftovers(job)
    ended_at = now_iso()

    if cancelled:
        state = schema.CANCELLED
    elif failure:
        state = schema.FAILED
    else:
        state = schema.SUCCEEDED if exit_code == 0 else schema.FAILED
    retrying = state == schema.FAILED and not failure and attempt < total
    job, delay = end_attempt(store, job, attempt, total, state=state, outcome=outcome, exit_code=exit_code,
                             signum=signum, leftovers=leftovers, ended_at=ended_at, retrying=retrying,
                             clear_pid=False)
    if delay is not None:
        argv = list(supervisor_argv)
        argv[0] = "retry"
        argv[5] = repr(time.time() + delay)
        argv[6] = f"{attempt + 1}/{total}"
        from .spawn import supervisor_command

        command = supervisor_command()
        os.execv(command[0], command + argv)

    reason = None
    if cancelled:
        reason = f"stopped by request, {outcome}"
    elif failure:
        reason = f"start failed: {failure_text(failure)}"
    elif state == schema.FAILED and total > 1:
        reason = f"all {total} attempts failed"
    finalise(store, job_id, state, reason=reason, exit_code=exit_code if not failure else None,
             signum=signum, leftovers=leftovers, ended_at=ended_at)
    if failure:
        write_error_log(store.log_root, job.get("name") or "job",
                        f"job {job_id}: start failed: {failure_text(failure)}\ncommand: {job.get('command')}\n"
                        f"cwd: {job.get('cwd')}\nlog: {job.get('log_path')}")


def failure_text(errno_text: str) -> str:
    try:
        number = int(errno_text)
        return f"{os.strerror(number)} (errno {number})"
    except ValueError:
        return errno_text


def on_cancelled_before_start(state_dir: str, job_id: str) -> None:
    store = store_for(state_dir)
    job = store.get(job_id)
    if job.get("attempts"):
        reason = f"stopped while waiting to retry (attempt {job.get('attempt')} of {int(job.get('retries') or 0) + 1})"
    else:
        reason = "stopped before it started"
    finalise(store, job_id, schema.CANCELLED, reason=reason, exit_code=None, signum=None, leftovers="0")


def main(argv: list[str]) -> None:
    """Run one hook; any exception goes to logs/errors with the job id, and the process exits."""
    verb = argv[0]
    state_dir = ""
    try:
        if verb == "started":
            pid, attempt, started_epoch, state_dir, job_id = argv[1:6]
            on_started(int(pid), int(attempt), float(started_epoch), state_dir, job_id)
        elif verb == "after":
            status, failure, state_dir, job_id = argv[1:5]
            on_after(int(status), failure, state_dir, job_id, argv[5:])
        elif verb == "adopted":
            pid, state_dir, job_id = argv[1:4]
            on_adopted(int(pid), state_dir, job_id)
        elif verb == "cancelled-before-start":
            state_dir, job_id = argv[1:3]
            on_cancelled_before_start(state_dir, job_id)
        else:
            raise ValueError(f"unknown hook {verb!r}")
    except BaseException:
        text = traceback.format_exc()
        log_root = Path(state_dir).parent if state_dir else Path.cwd()
        write_error_log(log_root, "supervisor", f"internal error in hook {verb} ({' '.join(argv[:5])}):\n{text}")
        os._exit(70)
    os._exit(0)

