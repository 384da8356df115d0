"""Finishing a job: its final state in both copies of the store and the footer of its log.

The footer's state lines are written before the store is updated, and the sync line after it,
so a crash between the two leaves a log whose footer `bgrun check` reads to repair the record.
"""

from __future__ import annotations

import logging
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


def finalise(store: Store, job_id: str, state: str, *, reason: str | None, exit_code: int | None,
             signum: int | None, leftovers: str, ended_at: str | None = None) -> dict[str, Any]:
    """Record the final state, write the footer and the sync line; return the stored job."""
    job = store.get(job_id)
    ended_at = ended_at or now_iso()
    final = dict(job)
    final.update(state=state, reason=reason, exit_code=exit_code, signal=signum, ended_at=ended_at,
                 duration=seconds_between(job.get("started_at"), ended_at))
    outcome = schema.describe_outcome(final) if job.get("started_at") else "never started"
    footer = logfile.footer_bytes(final, outcome, leftovers)
    log_written = _append_quietly(job, footer)

    def apply(record: dict[str, Any]) -> None:
        record.update(state=state, reason=reason, exit_code=exit_code, signal=signum, ended_at=ended_at,
                      duration=final["duration"])
        record["log_missing"] = record.get("log_missing", False) or not log_written

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
