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
    "backoff": {"initial": 5.0, "factor": 2.0, "max": 300.0},
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


# Fields whose type every reader relies on; the value None is allowed where FIELDS starts with None.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "state": (str,), "revision": (int,), "name": (str,), "category": (str,),
    "command": (str,), "cwd": (str,), "log_path": (str,), "log_root": (str,), "shell": (bool,),
    "log_missing": (bool,), "env": (dict,), "attempts": (list,), "attempt": (int,), "retries": (int,),
    "delay": (int, float), "stop_grace": (int, float), "kill_leftovers": (bool,),
    "exit_code": (int,), "signal": (int,), "pid": (int,), "supervisor_pid": (int,),
    "pid_create_time": (int, float), "supervisor_create_time": (int, float), "duration": (int, float),
    "argv": (list,), "reason": (str,), "created_at": (str,), "started_at": (str,), "ended_at": (str,),
    "scheduled_for": (str,), "updated_at": (str,), "environment": (str,), "env_file": (str,),
    "backoff": (dict,), "backend": (str,), "backend_id": (str,),
}
REQUIRED_TEXT = ("id", "state", "name", "category", "command", "cwd", "log_path")


def validation_error(job: dict[str, Any]) -> str | None:
    """Return what makes `job` invalid (a field and its value), or None when it is valid."""
    for name in REQUIRED_TEXT:
        if not isinstance(job.get(name), str) or not job[name]:
            return f"field '{name}' must be non-empty text, not {job.get(name)!r}"
    if job["state"] not in STATES:
        return f"field 'state' is {job['state']!r}, not one of {', '.join(STATES)}"
    if not str(job["id"]).isdigit():
        return f"field 'id' is {job['id']!r}, not a positive whole number"
    for name, types in FIELD_TYPES.items():
        value = job.get(name)
        if value is None:
            if FIELDS.get(name) is None and name not in REQUIRED_TEXT and name != "revision":
                continue
            return f"field '{name}' must not be null"
        if isinstance(value, bool) and bool not in types:
            return f"field '{name}' has the wrong type: {value!r}"
        if not isinstance(value, types):
            return f"field '{name}' has the wrong type: {value!r}"
    if job["revision"] < 0:
        return f"field 'revision' is negative: {job['revision']}"
    return None


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
