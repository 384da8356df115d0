"""Finishing a job: its final state in both copies of the store and the footer of its log.

The footer's state lines are written before the store is updated, and the sync line after it,
so a crash between the two leaves a log whose footer `bgrun check` reads to repair the record.
`end_attempt` records the end of one attempt, for the local hooks and the Slurm step alike.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from .. import logfile, schema
from ..store import Store, now_iso

log = logging.getLogger("bgrun.finish")


def seconds_between(start_iso: str | None, end_iso: str | None) -> float | None:
    if not start_iso or not end_iso:
        return None
    try:
        return max(0.0, (datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso)).total_seconds())
    except ValueError:
        return None


def iso_at(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")


def backoff_seconds(job: dict[str, Any], failed_attempt: int) -> float:
    backoff = job.get("backoff") or {}
    initial = float(backoff.get("initial", 5.0))
    factor = float(backoff.get("factor", 2.0))
    maximum = float(backoff.get("max", 300.0))
    try:
        return min(maximum, initial * factor ** (failed_attempt - 1))
    except OverflowError:  # thousands of retries with a factor above 1
        return maximum


def end_attempt(store: Store, job: dict[str, Any], attempt: int, total: int, *, state: str, outcome: str,
                exit_code: int | None, signum: int | None, leftovers: str, ended_at: str, retrying: bool,
                clear_pid: bool) -> tuple[dict[str, Any], float | None]:
    """Write the attempt's `ended` line to the log and record the attempt's end in the store.

    When `retrying`, the job becomes scheduled for the next attempt after the backoff, and the
    log gets a `retrying in N s` line. The Slurm step passes `clear_pid` to also clear `pid` and
    `pid_create_time` then, while the local supervisor keeps them until its next attempt starts.
    Returns the stored job and the backoff in seconds, or None when no retry follows.
    """
    _append_quietly(job, logfile.PREFIX + f"attempt {attempt} of {total} ended: {state}, {outcome}\n".encode())

    def apply(record: dict[str, Any]) -> None:
        for entry in record.get("attempts", []):
            if entry.get("number") == attempt:
                entry.update(ended_at=ended_at, state=state, exit_code=exit_code, signal=signum,
                             leftover_processes=leftovers)
        record["leftover_processes"] = leftovers
        if retrying:
            delay = backoff_seconds(record, attempt)
            record.update(state=schema.SCHEDULED, attempt=attempt + 1,
                          reason=f"attempt {attempt} {outcome}; retry {attempt + 1} of {total} in {delay:g} s",
                          scheduled_for=iso_at(time.time() + delay))
            if clear_pid:
                record.update(pid=None, pid_create_time=None)

    stored = store.update(job["id"], apply)
    if not retrying:
        return stored, None
    delay = backoff_seconds(stored, attempt)
    log.info("job %s: attempt %s %s, retrying in %g s", job["id"], attempt, outcome, delay)
    _append_quietly(stored, logfile.PREFIX + f"retrying in {delay:g} s\n".encode())
    return stored, delay


def finalise(store: Store, job_id: str, state: str, *, reason: str | None, exit_code: int | None,
             signum: int | None, leftovers: str, ended_at: str | None = None) -> dict[str, Any]:
    """Record the final state, write the footer and the sync line; return the stored job."""
    job = store.get(job_id)
    ended_at = ended_at or now_iso()
    final = dict(job)
    final.update(state=state, reason=reason, exit_code=exit_code, signal=signum, ended_at=ended_at,
                 duration=seconds_between(job.get("started_at"), ended_at))
    outcome = schema.describe_outcome(final) if job.get("started_at") else "never started"
    # An attempt still open here was not ended by its supervisor or step, which died first, so
    # its `ended` line is written here, before the footer.
    total = int(job.get("retries") or 0) + 1
    for entry in job.get("attempts") or []:
        if isinstance(entry, dict) and entry.get("ended_at") is None and entry.get("number"):
            _append_quietly(job, logfile.PREFIX + f"attempt {entry['number']} of {total} ended: {state}, {outcome}\n".encode())
    footer = logfile.footer_bytes(final, outcome, leftovers)
    log_written = _append_quietly(job, footer)

    def apply(record: dict[str, Any]) -> None:
        record.update(state=state, reason=reason, exit_code=exit_code, signal=signum, ended_at=ended_at,
                      duration=final["duration"])
        record["log_missing"] = record.get("log_missing", False) or not log_written
        for entry in record.get("attempts") or []:
            if isinstance(entry, dict) and entry.get("ended_at") is None:
                entry.update(ended_at=ended_at, state=state, exit_code=exit_code, signal=signum)

    stored = store.update(job_id, apply)
    _append_quietly(job, logfile.format_line("sync", store.last_sync.message))
    store.clear_cancel(job_id)
    log.info("job %s: %s (%s)", job_id, state, outcome)
    return stored


def _append_quietly(job: dict[str, Any], data: bytes) -> bool:
    """Append to the job's log; a missing or unwritable log is recorded, not raised."""
    path = job.get("log_path")
    if not path:
        return False
    try:
        logfile.append(path, data)
        return True
    except OSError as error:
        log.warning("job %s: cannot write to its log %s: %s", job["id"], path, error)
        return False
