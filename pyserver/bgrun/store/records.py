"""Per-job record files: `<log root>/.bgrun/jobs/<id>.json`, one canonical JSON job each."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

from .. import faults, schema

TEMP_SUFFIX = ".tmp"


def record_path(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / f"{job_id}.json"


def write_record(jobs_dir: Path, job: dict[str, Any]) -> Path:
    """Write a record atomically: a temporary file in the same folder, fsync, then rename."""
    path = record_path(jobs_dir, str(job["id"]))
    data = schema.to_json(job).encode("utf-8")
    temp = jobs_dir / f".{job['id']}.json.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    faults.reach("record-temp-written")
    os.replace(temp, path)
    return path


def verify_record(jobs_dir: Path, job: dict[str, Any]) -> os.stat_result | None:
    """Return the record file's stat when it holds exactly the canonical form of `job`, else None."""
    try:
        with open(record_path(jobs_dir, str(job["id"])), "rb") as handle:
            if handle.read() == schema.to_json(job).encode("utf-8"):
                return os.fstat(handle.fileno())
    except OSError:
        pass
    return None


def read_record(path: Path) -> dict[str, Any]:
    """Read and validate one record file; raise ValueError when it is not a job record."""
    try:
        job = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(job, dict) or "id" not in job or "state" not in job:
        raise ValueError(f"{path} is not a bgrun job record (no 'id' or 'state')")
    if str(job["id"]) != path.stem:
        raise ValueError(f"{path} contains job {job['id']!r}, which does not match its file name")
    version = job.get("schema", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path} has an invalid 'schema' {version!r}: expected a whole number")
    if version > schema.SCHEMA_VERSION:
        raise ValueError(
            f"{path} has job schema {job['schema']}, newer than this bgrun's "
            f"{schema.SCHEMA_VERSION}; upgrade bgrun"
        )
    job = schema.normalise(job)
    problem = schema.validation_error(job)
    if problem:
        raise ValueError(f"{path} is not a valid job record: {problem}")
    return job


def remove_record(jobs_dir: Path, job_id: str) -> bool:
    try:
        os.unlink(record_path(jobs_dir, job_id))
        return True
    except FileNotFoundError:
        return False


def scan_records(jobs_dir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (job id, path) for every record file, skipping temporary files."""
    try:
        entries = os.scandir(jobs_dir)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".json") and not name.startswith("."):
                yield name[:-5], Path(entry.path)
