"""The jobs of one log root as the server last read them, and the reports of what changed.

A record is read again only when its inode, mtime or size changed, and a change is reported
only when its revision grew. scan, refresh, check_removed and check_progress must be called with
`lock` held, so that the reports of one job leave in revision order.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

from .. import schema
from ..errors import JobNotFound
from ..store import DatabaseUnavailable, Store
from ..store import records
from ..backends.slurm import read_submission
from .progress import LogProgress
from .slurm_queue import QueueReasons

RECORD_NAME = re.compile(r"^(\d+)\.json$")

# on_change(log_root, job, previous_state, progress) and on_removed(log_root, job_id).
ChangeCallback = Callable[[str, "dict[str, Any]", "str | None", "float | None"], None]
RemovedCallback = Callable[[str, str], None]


class JobIndex:
    """Revision, state and record file signature of each job under one log root."""

    def __init__(self, root: str, jobs_dir: Path, on_change: ChangeCallback, on_removed: RemovedCallback):
        self.root = root
        self.jobs_dir = jobs_dir
        self.store = Store(root, create=False)
        self.on_change = on_change
        self.on_removed = on_removed
        self.lock = threading.Lock()
        self.signatures: dict[str, tuple[int, int, int]] = {}
        self.revisions: dict[str, int] = {}
        self.states: dict[str, str] = {}
        self.running: dict[str, tuple[dict[str, Any], LogProgress]] = {}
        self.missing: set[str] = set()
        self.queue = QueueReasons(self._slurm_conf_of)

    def scan(self, report: bool) -> None:
        """Read every changed record of the folder; with `report`, report each change."""
        seen = set()
        try:
            with os.scandir(self.jobs_dir) as entries:
                names = [entry.name for entry in entries]
        except OSError:
            names = []
        for name in names:
            match = RECORD_NAME.match(name)
            if match:
                seen.add(match.group(1))
                self.refresh(match.group(1), report)
        for job_id in [known for known in self.revisions if known not in seen]:
            self.check_removed(job_id, report)

    def refresh(self, job_id: str, report: bool) -> None:
        path = records.record_path(self.jobs_dir, job_id)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            self.check_removed(job_id, report)
            return
        except OSError:
            return
        signature = (info.st_ino, info.st_mtime_ns, info.st_size)
        if self.signatures.get(job_id) == signature:
            return
        try:
            job = records.read_record(path)
        except (OSError, ValueError):
            return
        self.signatures[job_id] = signature
        self.missing.discard(job_id)
        revision = job.get("revision")
        if not isinstance(revision, int) or revision <= self.revisions.get(job_id, -1):
            return
        previous = self.states.get(job_id)
        self.revisions[job_id] = revision
        self.states[job_id] = job.get("state")
        progress = self._track(job_id, job)
        self.queue.track(job_id, job)
        if report:
            self.on_change(self.root, job, previous, progress)

    def _track(self, job_id: str, job: dict[str, Any]) -> float | None:
        """Follow the log of a running job, and return its last known progress."""
        if job.get("state") != schema.RUNNING or not isinstance(job.get("log_path"), str):
            self.running.pop(job_id, None)
            return None
        entry = self.running.get(job_id)
        progress = entry[1] if entry and entry[1].log_path == job["log_path"] else LogProgress(job["log_path"])
        self.running[job_id] = (job, progress)
        return progress.value

    def check_removed(self, job_id: str, report: bool) -> None:
        """Report a job whose record file is gone, once the database has no row for it either."""
        if job_id not in self.revisions:
            return
        if self.jobs_dir.is_dir():
            try:
                self.store.get(job_id)
                self.missing.add(job_id)
                return
            except JobNotFound:
                pass
            except (DatabaseUnavailable, sqlite3.Error, OSError):
                self.missing.add(job_id)
                return
        for table in (self.signatures, self.revisions, self.states, self.running):
            table.pop(job_id, None)
        self.queue.forget(job_id)
        self.missing.discard(job_id)
        if report:
            self.on_removed(self.root, job_id)

    def check_progress(self) -> None:
        """Report running jobs whose progress changed, and retry records that went missing."""
        for job_id in list(self.missing):
            self.check_removed(job_id, report=True)
        for job, progress in list(self.running.values()):
            if progress.refresh():
                self.on_change(self.root, job, job["state"], progress.value)

    def _slurm_conf_of(self, job_id: str) -> str | None:
        """Return the SLURM_CONF that the Slurm job was submitted with, or None for the default."""
        saved = read_submission(self.store, job_id)
        slurm_conf = saved.get("slurm_conf") if isinstance(saved, dict) else None
        return slurm_conf if isinstance(slurm_conf, str) and slurm_conf else None

    def queue_reason_of(self, job_id: str) -> str | None:
        return self.queue.reason_of(job_id)

    def progress_of(self, job_id: str) -> float | None:
        entry = self.running.get(job_id)
        return entry[1].value if entry else None
