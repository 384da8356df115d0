"""The SQLite side of the job store: `<log root>/.bgrun/jobs.db`.

Each row holds a job's canonical JSON text (the same bytes as its record file) next to the few
columns that queries filter on. WAL journaling is used where the filesystem supports it; on
network filesystems, where WAL's shared memory is unsafe, the rollback journal is used instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from .. import schema

DB_SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "fuse.sshfs", "ceph",
     "fuse.ceph", "glusterfs", "fuse.glusterfs", "9p", "afs", "panfs", "fuse.gcsfuse", "wekafs"}
)

CREATE_STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id INTEGER PRIMARY KEY,
        revision INTEGER NOT NULL,
        state TEXT NOT NULL,
        category TEXT,
        log_path TEXT,
        log_missing INTEGER NOT NULL DEFAULT 0,
        file_size INTEGER,
        file_mtime_ns INTEGER,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state)",
    # Covers the check's scan of every job, so it never reads the JSON text of unchanged jobs.
    "CREATE INDEX IF NOT EXISTS jobs_summary ON jobs(revision, state, log_path, log_missing, file_size, file_mtime_ns)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def filesystem_type(path: Path) -> str | None:
    """Return the type of the filesystem that holds `path`, from /proc/mounts (Linux only)."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as handle:
            mounts = [line.split() for line in handle]
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for fields in mounts:
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type


def connect(path: Path) -> sqlite3.Connection:
    """Open the database, creating its tables; raise sqlite3.DatabaseError when it is damaged."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if filesystem_type(path.parent) in NETWORK_FILESYSTEMS:
            connection.execute("PRAGMA journal_mode = DELETE")
        else:
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        # Creating or upgrading the tables takes the write lock, so it happens only when needed:
        # a writer holding the lock must not stop others from opening the store to read.
        if _missing_columns(connection) is not None:
            with transaction(connection):
                connection.execute(CREATE_STATEMENTS[0])
                for column, declaration in _missing_columns(connection) or ():
                    connection.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")
                for statement in CREATE_STATEMENTS[1:]:
                    connection.execute(statement)
                connection.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (str(DB_SCHEMA_VERSION),)
                )
        connection.execute("SELECT count(*) FROM jobs").fetchone()
    except sqlite3.Error:
        connection.close()
        raise
    return connection


# Columns added after the first release of the table, with their declarations.
ADDED_COLUMNS = (("log_missing", "INTEGER NOT NULL DEFAULT 0"), ("file_size", "INTEGER"), ("file_mtime_ns", "INTEGER"))


def _missing_columns(connection: sqlite3.Connection) -> list[tuple[str, str]] | None:
    """Return the columns the jobs table lacks, or None when the tables and indexes are complete."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(jobs)")}
    indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    meta = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
    if not columns:
        return []
    missing = [(name, declaration) for name, declaration in ADDED_COLUMNS if name not in columns]
    if missing or not meta or not {"jobs_state", "jobs_summary"} <= indexes:
        return missing
    return None


def is_lock_error(error: BaseException) -> bool:
    """Return whether an SQLite error means another process holds the lock (not damage)."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Hold the write lock for the block (BEGIN IMMEDIATE) and commit, or roll back on error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def get_row(connection: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
    row = connection.execute("SELECT data FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
    return schema.normalise(json.loads(row[0])) if row else None


def get_text(connection: sqlite3.Connection, job_id: str) -> str | None:
    row = connection.execute("SELECT data FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
    return row[0] if row else None


def put_row(connection: sqlite3.Connection, job: dict[str, Any]) -> None:
    """Insert or replace a job's row; the record file's stat is unknown until `set_file_stat`."""
    connection.execute(
        "INSERT OR REPLACE INTO jobs(id, revision, state, category, log_path, log_missing, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (int(job["id"]), job["revision"], job["state"], job.get("category"), job.get("log_path"),
         int(bool(job.get("log_missing"))), schema.to_json(job)),
    )


def set_file_stat(connection: sqlite3.Connection, job_id: str, stat: os.stat_result) -> None:
    """Remember the size and mtime of the verified record file, so checks can skip reading it."""
    connection.execute("UPDATE jobs SET file_size = ?, file_mtime_ns = ? WHERE id = ?",
                       (stat.st_size, stat.st_mtime_ns, int(job_id)))


def delete_row(connection: sqlite3.Connection, job_id: str) -> bool:
    return connection.execute("DELETE FROM jobs WHERE id = ?", (int(job_id),)).rowcount > 0


def allocate_id(connection: sqlite3.Connection, jobs_dir: Path) -> str:
    """Return the next job id; call inside a transaction.

    Ids only grow: the high-water mark in `meta` survives removals, and an id whose record file
    already exists (a job the database lost) is skipped.
    """
    row = connection.execute("SELECT max(id) FROM jobs").fetchone()
    mark = connection.execute("SELECT value FROM meta WHERE key = 'max_id'").fetchone()
    next_id = max(row[0] or 0, int(mark[0]) if mark else 0) + 1
    while (jobs_dir / f"{next_id}.json").exists():
        next_id += 1
    connection.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('max_id', ?)", (str(next_id),))
    return str(next_id)


def raise_high_water_mark(connection: sqlite3.Connection, job_id: str) -> None:
    mark = connection.execute("SELECT value FROM meta WHERE key = 'max_id'").fetchone()
    if not mark or int(mark[0]) < int(job_id):
        connection.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('max_id', ?)", (str(job_id),))


def is_valid_id(job_id: str) -> bool:
    return isinstance(job_id, str) and job_id.isdigit() and 0 < len(job_id) <= 18 and int(job_id) > 0


def remove_database_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(path) + suffix)
