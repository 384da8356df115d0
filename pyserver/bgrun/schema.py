"""The job model shared by every interface.

A job is one JSON object. The same object, with the same field names, is what `bgrun list --json`
and `bgrun show --json` print, what the language server returns and notifies, what the per-job
record file holds and what the SQLite store keeps. `SCHEMA_VERSION` changes whenever a field
changes meaning or is removed; adding a field keeps the version. docs/job-schema.md describes each
field.
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA_VERSION = 1

SCHEDULED = "scheduled"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
LOST = "lost"

STATES = (SCHEDULED, RUNNING, SUCCEEDED, FAILED, CANCELLED, LOST)
ACTIVE_STATES = (SCHEDULED, RUNNING)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED, LOST)

# Every field of a job, with the value a new job starts with. Order here is the order in
# `bgrun show`, and the record files sort their keys, so the order carries no meaning there.
FIELDS: dict[str, Any] = {
    "schema": SCHEMA_VERSION,
    "id": None,
    "state": SCHEDULED,
    "reason": None,
    "backend": "local",
    "backend_id": None,
    "name": None,
    "category": None,
    "command": None,
    "argv": None,
    "shell": True,
    "cwd": None,
    "log_root": None,
    "log_path": None,
    "log_missing": False,
    "env": {},
    "env_file": None,
    "environment": None,
    "delay": 0.0,
    "created_at": None,
    "scheduled_for": None,
    "started_at": None,
    "ended_at": None,
    "duration": None,
    "exit_code": None,
    "signal": None,
    "retries": 0,
    "backoff": None,
    "attempt": 0,
    "attempts": [],
    "pid": None,
    "pid_create_time": None,
    "supervisor_pid": None,
    "supervisor_create_time": None,
    "leftover_processes": None,
    "stop_grace": 10.0,
    "kill_leftovers": True,
    "progress": None,
    "revision": 0,
    "updated_at": None,
}


def new_job(**values: Any) -> dict[str, Any]:
    """Return a job with every field, defaults filled in and `values` applied."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown job fields: {', '.join(sorted(unknown))}")
    job = json.loads(json.dumps(FIELDS))
    job.update(values)
    return job


def normalise(job: dict[str, Any]) -> dict[str, Any]:
    """Return `job` with missing fields set to their defaults, for records of older writers."""
    full = json.loads(json.dumps(FIELDS))
    full.update(job)
    return full


def to_json(job: dict[str, Any]) -> str:
    """Serialise a job canonically: the record file's bytes and the database's text are equal."""
    return json.dumps(job, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def signal_name(number: int | None) -> str | None:
    """Return the name of a signal number, such as SIGKILL, or None."""
    if number is None:
        return None
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_outcome(job: dict[str, Any]) -> str:
    """Return the outcome of a finished job in words: "exit code 3" or "killed by SIGKILL"."""
    if job.get("signal") is not None:
        return f"killed by {signal_name(job['signal'])}"
    if job.get("exit_code") is not None:
        return f"exit code {job['exit_code']}"
    return "no exit status"
