"""The job store: one SQLite database mirrored to one JSON record file per job.

Contract (docs/mirror.md says the same at more length):

- Where: `<log root>/.bgrun/jobs.db` and `<log root>/.bgrun/jobs/<id>.json`, next to the logs
  they describe, so a log root moved or copied as a folder keeps its jobs.
- Format: each record file is the job object of the shared schema (docs/job-schema.md),
  serialised canonically (sorted keys, two-space indent, UTF-8), and the database row holds the
  very same text, so the two copies are compared byte for byte.
- Writes: every change holds the store's file lock (`.bgrun/write.lock`) and is a
  read-modify-write in one SQLite transaction (BEGIN IMMEDIATE) that stores the row with
  `revision + 1`. After the commit, still under the file lock, the record file is written to a
  temporary file, synced, renamed over the old one, read back and compared. A reader of either
  copy therefore never sees a change the other copy has not committed. A crash before the commit
  leaves both copies unchanged; a crash after it leaves the row one revision ahead (or a
  temporary file), which `check` repairs by rewriting the file.
- Conflicts: the copy with the higher revision wins, because every writer increments it and
  writes under one lock. At equal revisions with different text the database wins: it is the
  copy written first, inside a transaction, and it is what every query reads.
- Rebuilds: a missing record file is rewritten from its row; a record file with no row is
  imported (a restored backup, or a row lost with a damaged database); a database that cannot
  be opened is moved aside as `jobs.db.broken-<time>` and rebuilt from all record files.
- Failures: a failed database or file write never fails the job. The other copy is still
  written, the failure is logged (Python logging and `logs/errors/`) and returned as the sync
  status, and the next check repairs the drift.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .. import faults, schema
from ..errors import BgrunError, JobNotFound
from . import database, records

log = logging.getLogger("bgrun.store")

STATE_DIR = ".bgrun"
SYNC_VERIFIED = "record written and verified"


@dataclass
class SyncStatus:
    """The outcome of mirroring one change to both copies."""

    ok: bool
    message: str


class DatabaseUnavailable(BgrunError):
    """The job database cannot be opened; `bgrun check --repair` rebuilds it."""


class DatabaseLocked(BgrunError):
    """Another process has held the job database's write lock for longer than the busy timeout."""

    def __init__(self, path: Path):
        super().__init__(
            f"the job database {path} stayed locked by another process for "
            f"{database.BUSY_TIMEOUT_MS // 1000} s; find the process holding it (fuser {path}) "
            f"and try again; the database itself is not damaged"
        )


def now_iso() -> str:
    """Return the current time as ISO 8601 with milliseconds and the local UTC offset."""
    # One clock reading for the seconds and the milliseconds: two readings can straddle a second
    # and make the time up to 1 s early.
    timestamp = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(timestamp)) + _fraction_and_offset(timestamp)


def _fraction_and_offset(timestamp: float) -> str:
    millis = int((timestamp % 1) * 1000)
    offset = time.strftime("%z", time.localtime(timestamp))
    return f".{millis:03d}{offset[:3]}:{offset[3:]}"


class Store:
    """Both copies of the jobs under one log root."""

    def __init__(self, log_root: str | os.PathLike, *, create: bool = True):
        self.log_root = Path(log_root)
        self.state_dir = self.log_root / STATE_DIR
        self.jobs_dir = self.state_dir / "jobs"
        self.db_path = self.state_dir / "jobs.db"
        self.cancel_dir = self.state_dir / "cancel"
        if create:
            for folder in (self.jobs_dir, self.cancel_dir):
                folder.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.last_sync = SyncStatus(True, SYNC_VERIFIED)

    # -- connection ---------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            fresh = not self.db_path.exists()
            try:
                connection = database.connect(self.db_path)
            except sqlite3.Error as error:
                if database.is_lock_error(error):
                    raise DatabaseLocked(self.db_path) from None
                raise DatabaseUnavailable(
                    f"the job database {self.db_path} cannot be opened ({error}); "
                    f"run 'bgrun check --repair' to rebuild it from the record files"
                ) from None
            self._local.connection = connection
            if fresh and any(records.scan_records(self.jobs_dir)):
                from .check import rebuild_from_records

                count = rebuild_from_records(self)
                log.warning("job database %s was missing; rebuilt it with %d jobs from the record files",
                            self.db_path, count)
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # -- reads --------------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any]:
        """Return a job, from the database, or from its record file when the database is down."""
        if not database.is_valid_id(str(job_id)):
            raise JobNotFound(f"invalid job id {job_id!r}: job ids are positive whole numbers, as 'bgrun list' shows")
        try:
            job = database.get_row(self.connection(), str(job_id))
        except (DatabaseUnavailable, sqlite3.Error):
            job = self._read_file(str(job_id))
        if job is None:
            job = self._read_file(str(job_id))
        if job is None:
            raise JobNotFound(f"no job {job_id} under log root {self.log_root}; 'bgrun list' shows the jobs there")
        return job

    def _read_file(self, job_id: str) -> dict[str, Any] | None:
        try:
            return records.read_record(records.record_path(self.jobs_dir, job_id))
        except (OSError, ValueError):
            return None

    def list(self, *, states: Iterable[str] | None = None, category: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Return jobs newest first, filtered by state and category."""
        query = "SELECT data FROM jobs"
        clauses, values = [], []
        if states:
            states = list(states)
            clauses.append(f"state IN ({', '.join('?' for _ in states)})")
            values.extend(states)
        if category:
            clauses.append("category = ?")
            values.append(category)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY id DESC"
        if limit:
            query += " LIMIT ?"
            values.append(int(limit))
        import json

        rows = self.connection().execute(query, values).fetchall()
        return [schema.normalise(json.loads(row[0])) for row in rows]

    # -- writes -------------------------------------------------------------------------------

    def create(self, fields: dict[str, Any], prepare: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Allocate an id and store a new job in both copies; return it.

        `prepare` runs inside the transaction, after the id is known, so it can reserve files
        named after the job. An exception from it rolls the transaction back.
        """
        connection = self.connection()
        try:
            return self._create(connection, fields, prepare)
        except sqlite3.OperationalError as error:
            if database.is_lock_error(error):
                raise DatabaseLocked(self.db_path) from None
            raise

    def _create(self, connection: sqlite3.Connection, fields: dict[str, Any],
                prepare: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        with self.write_lock():
            with database.transaction(connection):
                job_id = database.allocate_id(connection, self.jobs_dir)
                stamp = now_iso()
                job = schema.new_job(**fields)
                job.update(id=job_id, revision=1, created_at=job.get("created_at") or stamp, updated_at=stamp)
                if prepare is not None:
                    prepare(job)
                database.put_row(connection, job)
                faults.reach("db-written")
            faults.reach("committed")
            self.last_sync = self._write_file(job, connection)
            faults.reach("record-written")
        return job

    def update(self, job_id: str, mutate: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        """Apply `mutate` to the job in place under the write lock, store it in both copies, return it.

        When the database cannot be written, the record file is still updated from its own copy,
        and the failure becomes the sync status.
        """
        job_id = str(job_id)
        with self.write_lock():
            try:
                connection = self.connection()
                with database.transaction(connection):
                    current = database.get_row(connection, job_id)
                    file_job = self._read_file(job_id)
                    if current is None or (file_job and file_job["revision"] > current["revision"]):
                        current = file_job
                    if current is None:
                        raise JobNotFound(f"no job {job_id} under log root {self.log_root}")
                    job = self._apply(current, mutate)
                    database.put_row(connection, job)
                    faults.reach("db-written")
            except (sqlite3.Error, DatabaseUnavailable, DatabaseLocked) as error:
                return self._update_file_only(job_id, mutate, error)
            faults.reach("committed")
            self.last_sync = self._write_file(job, connection)
            faults.reach("record-written")
            return job

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the store's file lock, which orders each database commit with its record file.

        Writers commit the row first and then write the record file, both under this lock, so
        a reader of either copy never gets a change the other copy has not committed yet.
        """
        fd = os.open(self.state_dir / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _apply(self, current: dict[str, Any], mutate: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        job = copy.deepcopy(current)
        mutate(job)
        job["revision"] = current["revision"] + 1
        job["updated_at"] = now_iso()
        return job

    def _update_file_only(self, job_id: str, mutate, error: Exception) -> dict[str, Any]:
        current = self._read_file(job_id)
        if current is None:
            raise DatabaseUnavailable(
                f"job {job_id} cannot be updated: the job database failed ({error}) and its "
                f"record file is missing; run 'bgrun check --repair'"
            ) from None
        job = self._apply(current, mutate)
        status = self._write_file(job)
        message = f"database write failed ({error}); record file written, 'bgrun check --repair' will resync"
        self.last_sync = SyncStatus(False, message if status.ok else f"{message}; {status.message}")
        self._report_sync_failure(job, self.last_sync.message)
        return job

    def _write_file(self, job: dict[str, Any], connection: sqlite3.Connection | None = None) -> SyncStatus:
        """Write and verify the record file; a failure is reported and returned, never raised.

        With a connection, the verified file's stat is stored in the row after the commit, which
        lets `check` skip reading files that have not changed since.
        """
        try:
            records.write_record(self.jobs_dir, job)
            stat = records.verify_record(self.jobs_dir, job)
            if stat is None:
                raise OSError("the record file read back differs from what was written")
            if connection is not None:
                try:
                    database.set_file_stat(connection, job["id"], stat)
                except sqlite3.Error as error:  # only a cache for check; a full check still compares
                    log.warning("job %s: cannot store the record file's stat: %s", job["id"], error)
        except OSError as error:
            status = SyncStatus(False, f"record file write failed: {error}")
            self._report_sync_failure(job, status.message)
            return status
        log.debug("job %s: revision %s synced (%s)", job["id"], job["revision"], job["state"])
        return SyncStatus(True, SYNC_VERIFIED)

    def _report_sync_failure(self, job: dict[str, Any], message: str) -> None:
        from ..engine.errorlog import write_error_log

        log.error("job %s: sync failed: %s", job["id"], message)
        write_error_log(self.log_root, str(job.get("name") or "job"), f"job {job['id']}: sync failed: {message}")

    def remove(self, job_id: str) -> dict[str, Any]:
        """Delete a job from both copies; return what was removed."""
        job = self.get(job_id)
        connection = self.connection()
        with self.write_lock():
            with database.transaction(connection):
                database.delete_row(connection, str(job_id))
                faults.reach("db-written")
            records.remove_record(self.jobs_dir, str(job_id))
        return job

    # -- cancel markers -----------------------------------------------------------------------

    def cancel_marker(self, job_id: str) -> Path:
        return self.cancel_dir / str(job_id)

    def mark_cancel(self, job_id: str) -> None:
        self.cancel_dir.mkdir(parents=True, exist_ok=True)
        self.cancel_marker(job_id).write_text(now_iso() + "\n", encoding="utf-8")

    def is_cancel_requested(self, job_id: str) -> bool:
        return self.cancel_marker(job_id).exists()

    def clear_cancel(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.cancel_marker(job_id).unlink()
