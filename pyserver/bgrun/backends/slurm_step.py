"""Processes of the Slurm backend that run outside the launcher.

- `step STATE_DIR JOB_ID`: exec'd by the batch script inside the allocation. It records the job
  as running with its Slurm job id and runs the command with stdout and stderr on the log. It
  waits for the command with waitpid, which gives the exact exit code or signal. Then it writes
  the attempt lines and either submits the next attempt after the backoff or writes the footer.
  SIGTERM (scancel, time limit) is passed on to the command's process group, and the step then
  records the outcome within the cluster's KillWait. After a `bgrun stop`, which signals the step
  alone, the step also cancels its own batch job, so that Slurm records it as CANCELLED.
  The step exits as the command did (its exit code, or the same signal), so that Slurm's
  state and ExitCode agree with bgrun's: a command that exits 3 leaves Slurm FAILED 3:0, not
  COMPLETED.
- `wait STATE_DIR JOB_ID START_AT`: a detached waiter for a short delay. It sleeps until START_AT
  and submits; SIGTERM before that cancels the job.
- `release STATE_DIR JOB_ID START_AT`: a detached waiter for a job submitted with `--begin`. It
  sleeps until START_AT and then makes slurmctld schedule the job at once instead of at its next
  scheduling pass. SIGTERM ends it without touching the job, which then starts at that pass.

Both run with `python -I -S`, like the local supervisor's hooks, and write any internal error to
`logs/errors/` with the job id.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .. import logfile, schema
from ..engine import supervise
from ..engine.errorlog import write_error_log
from ..engine.finish import end_attempt, finalise, iso_at
from ..engine.hooks import decode_status, failure_text, stop_leftovers
from ..errors import BgrunError, StartError
from ..store import Store, now_iso
from . import slurm

log = logging.getLogger("bgrun.slurm_step")

# Variables of the finished job that must not reach the sbatch of the next attempt.
INHERITED_SLURM_PREFIXES = ("SLURM_", "SBATCH_")


def _store(state_dir: str) -> Store:
    return Store(Path(state_dir).parent)


def _submission_environ() -> dict[str, str]:
    """Return this process's environment without the finished job's Slurm variables, except SLURM_CONF."""
    return {key: value for key, value in os.environ.items()
            if key == "SLURM_CONF" or not key.startswith(INHERITED_SLURM_PREFIXES)}


def _requeue_count() -> int:
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        return 0


def _begin_attempt(store: Store, job_id: str, slurm_id: str) -> tuple[dict[str, Any], int, int]:
    """Return the job, the number of this attempt and the total, marking a Slurm requeue as an attempt."""
    job = store.get(job_id)
    attempt = max(1, int(job.get("attempt") or 1))
    requeues = _requeue_count()
    total = int(job.get("retries") or 0) + 1 + requeues
    running = [entry for entry in job.get("attempts", []) if entry.get("state") == schema.RUNNING]
    if requeues and running:
        # Slurm requeued the batch job (SLURM_RESTART_COUNT > 0) and the step of the last attempt
        # could not record its end, as after a node failure.
        previous = running[-1]["number"]
        slurm.append_line(job, logfile.PREFIX + (
            f"attempt {previous} of {total} ended: requeued by Slurm (restart {requeues})\n").encode())

        def close_previous(record: dict[str, Any]) -> None:
            for entry in record.get("attempts", []):
                if entry.get("number") == previous:
                    entry.update(state=schema.FAILED, ended_at=now_iso())

        store.update(job_id, close_previous)
        attempt = previous + 1
    return job, attempt, total


terminated = False


def _on_term(signum: int, frame: Any) -> None:
    """Remember the SIGTERM (scancel, time limit) and pass it on as the local supervisor does."""
    global terminated
    terminated = True
    supervise.on_term(signum, frame)


def run_step(state_dir: str, job_id: str) -> int:
    """Run one attempt of the job and return the step's exit status: 0, the exit code, or -signal."""
    store = _store(state_dir)
    slurm_id = os.environ.get("SLURM_JOB_ID", "")
    job = store.get(job_id)
    if job["state"] in schema.FINAL_STATES:
        log.warning("job %s: already %s, so Slurm job %s exits without running it", job_id, job["state"], slurm_id)
        return 0
    job, attempt, total = _begin_attempt(store, job_id, slurm_id)

    signal.signal(signal.SIGTERM, _on_term)
    log_fd = os.open(job["log_path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    argv = job["argv"] or [supervise_shell(), "-c", job["command"]]
    started_epoch = time.time()
    line = "[bgrun] attempt %s of %s started: %s pid PID\n" % (attempt, total, iso_at(started_epoch))
    marker = f"{job_id}@{job['log_root']}"
    try:
        pid, failure = supervise.start_job(argv, argv[0], job["cwd"], log_fd, line.encode(), marker)
    except supervise.Cancelled:
        finalise(store, job_id, schema.CANCELLED, reason="stopped before it started", exit_code=None,
                 signum=None, leftovers="0")
        return 0
    from ..engine import liveness

    create_time = liveness.create_time_of(pid)
    started_at = iso_at(started_epoch)

    def record_running(record: dict[str, Any]) -> None:
        record.update(state=schema.RUNNING, reason=f"Slurm RUNNING (job {slurm_id})", pid=pid,
                      pid_create_time=create_time, attempt=attempt, backend_id=slurm_id or record.get("backend_id"))
        record["started_at"] = record.get("started_at") or started_at
        record["attempts"] = [entry for entry in record.get("attempts", []) if entry.get("number") != attempt]
        record["attempts"].append({"number": attempt, "started_at": started_at, "pid": pid, "ended_at": None,
                                   "state": schema.RUNNING, "exit_code": None, "signal": None})

    if not failure:
        store.update(job_id, record_running)
    _, status = os.waitpid(pid, 0)
    return _after(store, job_id, attempt, total, status, failure)


def supervise_shell() -> str:
    from ..engine.spawn import SHELL

    return SHELL


def _slurm_end_reason(slurm_id: str) -> str | None:
    """Return why Slurm is ending this job (CANCELLED, TIMEOUT, REQUEUED), or None while it still runs.

    While the step runs, `scontrol` shows an ending job only as COMPLETING (Slurm 22.05 prints
    the COMPLETING flag instead of the base state). A restart count above this step's means
    REQUEUED, a run time that reached the time limit means TIMEOUT, and anything else CANCELLED.
    """
    if not slurm_id:
        return None
    try:
        slurm_job = slurm.query_job(slurm_id, slurm.client_environ())
    except Exception as error:  # noqa: BLE001 - the footer must be written whatever the query hits
        log.warning("cannot read Slurm job %s: %s", slurm_id, error)
        return None
    if slurm_job is None:
        return None
    try:
        if int(slurm_job.fields.get("Restarts", "0")) > _requeue_count():
            return "REQUEUED"
    except ValueError:
        pass
    if slurm_job.state == "RUNNING":
        return None
    if slurm_job.state != "COMPLETING":
        return slurm_job.state
    limit = slurm.parse_duration(slurm_job.fields.get("TimeLimit", ""))
    run_time = slurm.parse_duration(slurm_job.fields.get("RunTime", ""))
    if limit is not None and run_time is not None and run_time >= limit:
        return "TIMEOUT"
    # NOTE: preemption also ends a job this way and is reported as CANCELLED.
    return "CANCELLED"


def _after(store: Store, job_id: str, attempt: int, total: int, status: int, failure: str) -> int:
    """Record the end of the attempt, and return the step's exit status (see `step_status`)."""
    job = store.get(job_id)
    exit_code, signum = decode_status(status)
    outcome = "start failed" if failure else schema.describe_outcome({"exit_code": exit_code, "signal": signum})
    if terminated:
        _let_signalled_processes_exit(job)
    leftovers = stop_leftovers(job)
    ended_at = now_iso()
    slurm_state = _slurm_end_reason(job.get("backend_id") or "") if signum or terminated else None

    if store.is_cancel_requested(job_id):
        state, reason = schema.CANCELLED, f"stopped by request, {outcome}"
    elif slurm_state == "CANCELLED":
        state, reason = schema.CANCELLED, f"Slurm CANCELLED, {outcome}"
    elif failure:
        state, reason = schema.FAILED, f"start failed: {failure_text(failure)}"
    elif exit_code == 0:
        state, reason = schema.SUCCEEDED, None
    else:
        state = schema.FAILED
        reason = f"Slurm {slurm_state}, {outcome}" if slurm_state else None
    if slurm_state == "REQUEUED" and not store.is_cancel_requested(job_id):
        _record_requeue(store, job, attempt, total, outcome, ended_at)
        return 0
    if state == schema.CANCELLED and slurm_state is None and job.get("backend_id"):
        _cancel_own_job(job_id, job["backend_id"])
    retrying = state == schema.FAILED and not failure and slurm_state is None and attempt < total
    job, delay = end_attempt(store, job, attempt, total, state=state, outcome=outcome, exit_code=exit_code,
                             signum=signum, leftovers=leftovers, ended_at=ended_at, retrying=retrying,
                             clear_pid=True)
    if delay is not None:
        try:
            slurm.submit(store, job_id, _submission_environ(), begin_seconds=delay)
            return step_status(state, exit_code, signum)
        except StartError as error:
            state, reason = schema.FAILED, f"attempt {attempt + 1} could not be submitted: {error}"
            write_error_log(store.log_root, job.get("name") or "job", f"job {job_id}: {reason}")
    elif state == schema.FAILED and total > 1 and reason is None:
        reason = f"all {total} attempts failed"
    finalise(store, job_id, state, reason=reason, exit_code=None if failure else exit_code, signum=signum,
             leftovers=leftovers, ended_at=ended_at)
    return step_status(state, exit_code, signum)


def step_status(state: str, exit_code: int | None, signum: int | None) -> int:
    """Return how the step exits after an attempt: 0, the command's exit code, or -signal.

    Only a failed attempt exits non-zero. A cancelled one exits 0, because the step has already
    cancelled its batch job (or Slurm is ending it), and Slurm records CANCELLED either way.
    """
    if state != schema.FAILED:
        return 0
    if signum:
        return -signum
    return exit_code if exit_code else 1


def exit_like(status: int) -> None:
    """End this process with `status` from step_status: exit with the code, or die of the signal."""
    sys.stdout.flush()
    sys.stderr.flush()
    if status < 0:
        try:
            import resource

            # Dying of SIGSEGV or SIGABRT here must not write a core file of the step.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if -status != signal.SIGKILL:
                signal.signal(-status, signal.SIG_DFL)
            os.kill(os.getpid(), -status)
        except (OSError, ValueError) as error:
            log.warning("cannot end the step with signal %d: %s", -status, error)
        # Reached when the signal did not end the process: its default action is not to terminate,
        # or os.kill failed.
        os._exit(128 + (-status))
    os._exit(min(status, 255))


def _let_signalled_processes_exit(job: dict[str, Any]) -> None:
    """Wait up to half the stop grace for the job's processes that got the forwarded SIGTERM.

    The step signals the whole group at once, and a shell can exit before the program it started,
    which is then still ending on its own rather than left behind. The local stop waits for the
    whole tree the same way. Half the grace leaves the other half for the footer before `bgrun
    stop` runs scancel.
    """
    if not job.get("pid"):
        return
    import psutil

    from ..engine.stop import collect_tree, job_marker

    tree = collect_tree(None, int(job["pid"]), job_marker(job))
    if tree:
        psutil.wait_procs(list(tree.values()), timeout=float(job.get("stop_grace") or 10.0) / 2)


def _cancel_own_job(job_id: str, slurm_id: str) -> None:
    """Cancel this step's own batch job after a `bgrun stop`, so that Slurm records it as CANCELLED.

    `bgrun stop` sends SIGTERM to the step alone (`scancel --batch --signal=TERM`), and Slurm
    records a batch job whose script then exits as COMPLETED. The scancel here also sends
    SIGTERM to the step, which has no command left to pass it on to, so the step ignores it.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        result = slurm.run_client(["scancel", slurm_id], slurm.client_environ())
    except BgrunError as error:
        log.warning("job %s: cannot cancel Slurm job %s after the stop: %s", job_id, slurm_id, error)
        return
    if result.returncode != 0:
        log.warning("job %s: scancel %s after the stop failed: %s", job_id, slurm_id,
                    result.stderr.strip() or result.returncode)


def _record_requeue(store: Store, job: dict[str, Any], attempt: int, total: int, outcome: str, ended_at: str) -> None:
    """End the attempt that Slurm requeued and leave the job scheduled for the requeued batch job."""
    restart = _requeue_count() + 1
    slurm.append_line(job, logfile.PREFIX + (
        f"attempt {attempt} of {total} ended: requeued by Slurm (restart {restart}), {outcome}\n").encode())

    def apply(record: dict[str, Any]) -> None:
        for entry in record.get("attempts", []):
            if entry.get("number") == attempt:
                entry.update(ended_at=ended_at, state=schema.FAILED)
        record.update(state=schema.SCHEDULED, attempt=attempt + 1, pid=None, pid_create_time=None,
                      reason=f"Slurm REQUEUED (restart {restart})")

    store.update(job["id"], apply)
    log.info("job %s: attempt %s requeued by Slurm (restart %s)", job["id"], attempt, restart)


def _sleep_until(start_at: float) -> None:
    while True:
        remaining = start_at - time.time()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 60.0))


def run_releaser(state_dir: str, job_id: str, start_at: float) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _sleep_until(start_at)
    store = _store(state_dir)
    job = store.get(job_id)
    if job["state"] != schema.SCHEDULED or not job.get("backend_id"):
        return
    saved = slurm.read_submission(store, job_id)
    slurm.release_begin_time(job_id, job["backend_id"], slurm.client_environ(None, saved.get("slurm_conf")))


def run_waiter(state_dir: str, job_id: str, start_at: float) -> None:
    store = _store(state_dir)

    def on_term(signum: int, frame: Any) -> None:
        raise supervise.Cancelled()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _sleep_until(start_at)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except supervise.Cancelled:
        finalise(store, job_id, schema.CANCELLED, reason="stopped before it started", exit_code=None,
                 signum=None, leftovers="0")
        return
    if store.is_cancel_requested(job_id):
        finalise(store, job_id, schema.CANCELLED, reason="stopped before it started", exit_code=None,
                 signum=None, leftovers="0")
        return
    try:
        slurm.submit(store, job_id, dict(os.environ))
    except StartError as error:
        write_error_log(store.log_root, store.get(job_id).get("name") or "job", f"job {job_id}: {error}")
        finalise(store, job_id, schema.FAILED, reason=str(error), exit_code=None, signum=None, leftovers="0")


def main(argv: list[str]) -> None:
    """Run one step verb; any exception goes to logs/errors with the job id, and the process exits."""
    verb = argv[0] if argv else ""
    state_dir = argv[1] if len(argv) > 1 else ""
    status = 0
    try:
        if verb == "step":
            status = run_step(argv[1], argv[2])
        elif verb == "wait":
            run_waiter(argv[1], argv[2], float(argv[3]))
        elif verb == "release":
            run_releaser(argv[1], argv[2], float(argv[3]))
        else:
            raise ValueError(f"unknown Slurm step verb {verb!r}")
    except BaseException:
        text = traceback.format_exc()
        log_root = Path(state_dir).parent if state_dir else Path.cwd()
        write_error_log(log_root, "slurm", f"internal error in Slurm {verb} ({' '.join(argv[:3])}):\n{text}")
        sys.stderr.write(text)
        os._exit(70)
    exit_like(status)
