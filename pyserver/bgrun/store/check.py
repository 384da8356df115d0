"""The consistency check: compare the job database, the record files, the logs and the processes.

Each kind of drift has a fixed name, a count and a repair (docs/mirror.md has the table):

- `database_unreadable`: the database cannot be opened or fails `PRAGMA quick_check`. It is moved
  aside as `jobs.db.broken-<time>` and rebuilt from the record files.
- `record_file_missing`: a row with no record file. The file is written from the row.
- `database_row_missing`: a record file with no row (a restored backup, a lost row). It is imported.
- `record_unreadable`: a record file that is not a valid job. It is rewritten from the row, or moved
  aside as `<id>.json.invalid-<time>` when there is no row.
- `fields_differ`: both copies exist with different content. The higher revision wins; at equal
  revisions the database wins. The winner is written over the other copy.
- `process_gone`: a job recorded as scheduled or running whose process and supervisor are both
  gone. Its final state comes from the log footer when there is one, else it becomes `lost` and
  gets a footer.
- `log_missing`: a job whose log file is gone (it is marked `log_missing`), or whose log is back.
- `log_without_record`: a bgrun log on disk that no job points to. A job is imported from its
  header and footer.
- `temporary_file`: a temporary record file left by a writer that died before its rename. It is
  deleted.

The comparison runs under the store's file lock and the database's write lock, so no writer
changes either copy meanwhile.
Every check that finds drift, and every check run by hand, writes its report to
`<log root>/sync/check_YYYYMMDD_HHMMSS.log`; clean periodic checks write nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import logfile, schema
from . import database, records
from .mirror import STATE_DIR, DatabaseLocked, DatabaseUnavailable, Store, now_iso

log = logging.getLogger("bgrun.check")

DRIFT_KINDS = (
    "database_unreadable",
    "record_file_missing",
    "database_row_missing",
    "record_unreadable",
    "fields_differ",
    "process_gone",
    "log_missing",
    "log_without_record",
    "temporary_file",
)
SYNC_FOLDER = "sync"
NON_CATEGORY_FOLDERS = frozenset({"errors", SYNC_FOLDER, STATE_DIR})
# A job younger than this may still be between its two launch writes (record, then supervisor PID).
LAUNCH_SETTLE_SECONDS = 30.0


@dataclass
class Drift:
    kind: str
    job_id: str | None
    detail: str
    repaired: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "job": self.job_id, "detail": self.detail, "repaired": self.repaired}


@dataclass
class Report:
    log_root: str
    repair: bool
    started_at: str
    jobs: int = 0
    record_files: int = 0
    log_files: int = 0
    drifts: list[Drift] = field(default_factory=list)
    # Jobs whose state could not be compared, with the reason, such as a Slurm controller that is down.
    unchecked: list[Drift] = field(default_factory=list)
    seconds: float = 0.0
    report_path: str | None = None

    @property
    def consistent(self) -> bool:
        return not self.drifts

    @property
    def complete(self) -> bool:
        return not self.unchecked

    def counts(self) -> dict[str, int]:
        counts = {kind: 0 for kind in DRIFT_KINDS}
        for drift in self.drifts:
            counts[drift.kind] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_root": self.log_root, "repair": self.repair, "started_at": self.started_at,
            "consistent": self.consistent, "complete": self.complete, "jobs": self.jobs,
            "record_files": self.record_files,
            "log_files": self.log_files, "counts": self.counts(),
            "repaired": sum(1 for d in self.drifts if d.repaired),
            "drifts": [d.to_dict() for d in self.drifts],
            "unchecked": [{"job": item.job_id, "detail": item.detail} for item in self.unchecked],
            "seconds": round(self.seconds, 3),
            "report_path": self.report_path,
        }

    def to_text(self) -> str:
        lines = [f"bgrun check of {self.log_root} at {self.started_at}",
                 f"jobs in database: {self.jobs}", f"record files: {self.record_files}",
                 f"log files: {self.log_files}"]
        for kind, count in self.counts().items():
            lines.append(f"drift {kind}: {count}")
        for drift in self.drifts:
            target = f"job {drift.job_id}" if drift.job_id else "store"
            lines.append(f"  {drift.kind}: {target}: {drift.detail}" + (" (repaired)" if drift.repaired else ""))
        for item in self.unchecked:
            lines.append(f"  not checked: job {item.job_id}: {item.detail}")
        repaired = sum(1 for d in self.drifts if d.repaired)
        if self.consistent and not self.complete:
            lines.append(f"result: no drift found, but {len(self.unchecked)} job(s) could not be checked")
        elif self.consistent:
            lines.append("result: consistent")
        elif self.repair:
            lines.append(f"result: {len(self.drifts)} drifts found, {repaired} repaired")
        else:
            lines.append(f"result: {len(self.drifts)} drifts found; run 'bgrun check --repair' to fix them")
        return "\n".join(lines)


def run_check(log_root: str | os.PathLike, repair: bool = False, *, write_clean_report: bool = True,
              full: bool = False) -> Report:
    """Check one log root, repairing when asked; return the report (also written to logs/sync/).

    `full` reads and compares every record file, not only those whose size or mtime changed.
    """
    started = time.monotonic()
    root = Path(log_root)
    report = Report(log_root=str(root), repair=repair, started_at=now_iso())
    if (root / STATE_DIR).is_dir():
        store = Store(root)
        try:
            _check_store(store, report, repair, full)
        finally:
            store.close()
    report.seconds = time.monotonic() - started
    if report.drifts or report.unchecked or write_clean_report:
        report.report_path = _write_report(root, report)
    for drift in report.drifts:
        log.info("job %s: drift %s: %s%s", drift.job_id, drift.kind, drift.detail,
                    " (repaired)" if drift.repaired else "")
    return report


def _check_store(store: Store, report: Report, repair: bool, full: bool) -> None:
    connection = _open_or_rebuild(store, report, repair)
    if connection is None:
        return
    with store.write_lock(), database.transaction(connection):
        rows = {str(row[0]): row[1:] for row in connection.execute(
            "SELECT id, revision, state, log_path, log_missing, file_size, file_mtime_ns FROM jobs")}
        report.jobs = len(rows)
        files, temporary = _scan_record_folder(store.jobs_dir)
        report.record_files = len(files)
        jobs = _compare_copies(store, connection, rows, files, report, repair, full)
        logs_on_disk = _scan_logs(store.log_root)
        report.log_files = len(logs_on_disk)
        _check_temporary_files(temporary, report, repair)
        _import_orphan_logs(store, connection, jobs, logs_on_disk, report, repair)
    _check_logs_and_processes(store, jobs, logs_on_disk, report, repair)


def _open_or_rebuild(store: Store, report: Report, repair: bool) -> sqlite3.Connection | None:
    problem = None
    if not store.db_path.exists():
        problem = f"{store.db_path} is missing"
    else:
        try:
            connection = store.connection()
            result = connection.execute("PRAGMA quick_check").fetchone()
            if result and result[0] != "ok":
                problem = f"{store.db_path} fails its integrity check: {result[0]}"
        except (sqlite3.Error, DatabaseUnavailable) as error:
            if database.is_lock_error(error):
                raise DatabaseLocked(store.db_path) from None
            problem = f"{store.db_path} cannot be opened: {error}"
    if problem is None:
        return connection
    drift = Drift("database_unreadable", None, problem)
    report.drifts.append(drift)
    if not repair:
        return None
    store.close()
    if store.db_path.exists():
        aside = store.db_path.with_name(f"jobs.db.broken-{time.strftime('%Y%m%d_%H%M%S')}")
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(str(store.db_path) + suffix, str(aside) + suffix)
        drift.detail += f"; moved aside to {aside.name}"
    connection = store.connection()  # opening a new database imports the record files
    rebuild_from_records(store)
    count = connection.execute("SELECT count(*) FROM jobs").fetchone()[0]
    drift.repaired = True
    drift.detail += f"; rebuilt with {count} jobs from the record files"
    return connection


def rebuild_from_records(store: Store) -> int:
    """Import every valid record file that is missing or older in the database; return the count."""
    connection = store.connection()
    imported = 0
    with database.transaction(connection):
        for job_id, path in records.scan_records(store.jobs_dir):
            try:
                job = records.read_record(path)
            except (OSError, ValueError):
                continue
            row = connection.execute("SELECT revision FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
            if row is None or row[0] < job["revision"]:
                _import_file(connection, job, path)
                imported += 1
    return imported


def _import_file(connection: sqlite3.Connection, job: dict[str, Any], path: Path) -> None:
    database.put_row(connection, job)
    database.raise_high_water_mark(connection, job["id"])
    with contextlib.suppress(OSError):
        database.set_file_stat(connection, job["id"], path.stat())


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    return {"revision": job["revision"], "state": job["state"], "log_path": job.get("log_path"),
            "log_missing": bool(job.get("log_missing"))}


def _compare_copies(store, connection, rows, files, report, repair, full) -> dict[str, dict[str, Any]]:
    """Compare each row with its record file; return a summary of the winning copy of every job.

    A record file whose size and mtime equal those stored when it was last written and verified
    is unchanged, so only files that differ (or all of them, with `full`) are read and compared
    byte for byte with the row's text.
    """
    jobs: dict[str, dict[str, Any]] = {}
    for job_id, (revision, state, log_path, log_missing, size, mtime_ns) in rows.items():
        summary = {"revision": revision, "state": state, "log_path": log_path, "log_missing": bool(log_missing)}
        jobs[job_id] = summary
        entry = files.pop(job_id, None)
        if entry is None:
            drift = Drift("record_file_missing", job_id, f"{records.record_path(store.jobs_dir, job_id)} is missing")
            if repair:
                drift.repaired = _write_file(store, connection, json.loads(database.get_text(connection, job_id)), drift)
            report.drifts.append(drift)
            continue
        try:
            stat = entry.stat()
        except OSError:
            stat = None
        if not full and stat is not None and (stat.st_size, stat.st_mtime_ns) == (size, mtime_ns):
            continue
        text = database.get_text(connection, job_id)
        try:
            data = Path(entry.path).read_bytes()
        except OSError as error:
            data = f"unreadable: {error}".encode()
        if data == text.encode("utf-8"):
            if repair and stat is not None:
                database.set_file_stat(connection, job_id, stat)
            continue
        jobs[job_id] = _resolve_difference(store, connection, job_id, Path(entry.path), json.loads(text), report, repair)

    for job_id, entry in files.items():
        if not database.is_valid_id(job_id):
            continue
        path = Path(entry.path)
        try:
            job = records.read_record(path)
        except (OSError, ValueError) as error:
            drift = Drift("record_unreadable", job_id, f"{error}; no database row to restore it from")
            if repair:
                aside = path.with_name(f"{path.name}.invalid-{time.strftime('%Y%m%d_%H%M%S')}")
                os.replace(path, aside)
                drift.repaired = True
                drift.detail += f"; moved aside to {aside.name}"
            report.drifts.append(drift)
            continue
        drift = Drift("database_row_missing", job_id, f"record file {path.name} (revision {job['revision']}) has no row")
        if repair:
            _import_file(connection, job, path)
            drift.repaired = True
            drift.detail += "; imported"
        report.drifts.append(drift)
        jobs[job_id] = _summary(job)
    return jobs


def _resolve_difference(store, connection, job_id, path, row_job, report, repair) -> dict[str, Any]:
    try:
        file_job = records.read_record(path)
    except (OSError, ValueError) as error:
        drift = Drift("record_unreadable", job_id, f"{error}; the database row wins")
        if repair:
            drift.repaired = _write_file(store, connection, row_job, drift)
        report.drifts.append(drift)
        return _summary(row_job)
    file_wins = file_job["revision"] > row_job["revision"]
    changed = sorted(k for k in set(file_job) | set(row_job) if file_job.get(k) != row_job.get(k))
    drift = Drift("fields_differ", job_id,
                  f"fields {', '.join(changed) or '(formatting)'} differ; database revision {row_job['revision']}, "
                  f"record file revision {file_job['revision']}; the {'record file' if file_wins else 'database'} wins")
    if repair:
        if file_wins:
            _import_file(connection, file_job, path)
            drift.repaired = True
        else:
            drift.repaired = _write_file(store, connection, row_job, drift)
    report.drifts.append(drift)
    return _summary(file_job if file_wins else row_job)


def _write_file(store: Store, connection: sqlite3.Connection, job: dict[str, Any], drift: Drift) -> bool:
    try:
        records.write_record(store.jobs_dir, job)
        stat = records.verify_record(store.jobs_dir, job)
    except OSError as error:
        drift.detail += f"; repair failed: {error}"
        return False
    if stat is None:
        drift.detail += "; repair failed: the rewritten file differs when read back"
        return False
    database.set_file_stat(connection, job["id"], stat)
    return True


def _scan_logs(log_root: Path) -> set[str]:
    """Return the paths of all `.log` files in the category folders of a log root."""
    found: set[str] = set()
    try:
        folders = [e for e in os.scandir(log_root) if e.is_dir() and e.name not in NON_CATEGORY_FOLDERS]
    except FileNotFoundError:
        return found
    for folder in folders:
        with os.scandir(folder.path) as entries:
            found.update(e.path for e in entries if e.name.endswith(".log"))
    return found


def _scan_record_folder(jobs_dir: Path) -> tuple[dict[str, os.DirEntry], list[Path]]:
    """List the record files and the temporary files of the jobs folder in one pass."""
    files: dict[str, os.DirEntry] = {}
    temporary: list[Path] = []
    try:
        entries = os.scandir(jobs_dir)
    except FileNotFoundError:
        return files, temporary
    with entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".json") and not name.startswith("."):
                files[name[:-5]] = entry
            elif name.startswith(".") and name.endswith(records.TEMP_SUFFIX):
                temporary.append(Path(entry.path))
    return files, temporary


def _check_temporary_files(temporary: list[Path], report: Report, repair: bool) -> None:
    for path in temporary:
        parts = path.name.split(".")
        writer = int(parts[3]) if len(parts) > 4 and parts[3].isdigit() else None
        if writer is not None and writer != os.getpid() and _pid_exists(writer):
            continue
        drift = Drift("temporary_file", parts[1] if len(parts) > 1 else None,
                      f"{path.name} was left by a writer that died before renaming it")
        if repair:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            drift.repaired = True
        report.drifts.append(drift)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _import_orphan_logs(store, connection, jobs, logs_on_disk, report, repair) -> None:
    known = {job["log_path"] for job in jobs.values()}
    for path in sorted(logs_on_disk - known):
        try:
            parsed = logfile.parse(Path(path))
        except OSError:
            continue
        header = parsed["header"]
        if "job" not in header or "command" not in header:
            continue
        drift = Drift("log_without_record", header.get("job"), f"{path} has a bgrun header but no job record")
        if repair:
            job = job_from_log(Path(path), parsed)
            if job["id"] in jobs or not database.is_valid_id(job["id"]):
                job["id"] = database.allocate_id(connection, store.jobs_dir)
            database.put_row(connection, job)
            database.raise_high_water_mark(connection, job["id"])
            _write_file(store, connection, job, drift)
            jobs[job["id"]] = _summary(job)
            drift.repaired = True
            drift.detail += f"; imported as job {job['id']} ({job['state']})"
        report.drifts.append(drift)


def job_from_log(path: Path, parsed: dict[str, Any]) -> dict[str, Any]:
    """Rebuild a job record from the header, attempt lines and footer of its log."""
    header, footer = parsed["header"], parsed["footer"]
    argv = header.get("argv") if isinstance(header.get("argv"), list) else None
    job = schema.new_job(
        id=str(header.get("job")), name=header.get("name") or path.stem, category=path.parent.name,
        command=header.get("command"), argv=argv, shell=argv is None, cwd=header.get("cwd"),
        log_root=str(path.parent.parent), log_path=str(path), environment=header.get("environment"),
        created_at=header.get("created"), scheduled_for=header.get("scheduled for"), revision=1,
        updated_at=now_iso(),
    )
    started = [a for a in parsed["attempts"] if a["event"] == "started"]
    if started:
        job["attempt"] = started[-1]["number"]
        job["retries"] = started[-1]["of"] - 1
        job["started_at"] = started[0]["detail"].split(" pid ")[0]
    apply_footer(job, footer)
    if footer is None:
        job.update(state=schema.LOST, reason="imported from a log without a footer")
    else:
        job["reason"] = (job.get("reason") or "") + "; imported from its log" if job.get("reason") else "imported from its log"
    return job


def apply_footer(job: dict[str, Any], footer: dict[str, Any] | None) -> bool:
    """Set state, exit status, end time and duration from a parsed footer; return False if none."""
    if not footer:
        return False
    state_text = str(footer.get("state", ""))
    state = state_text.split(" ", 1)[0]
    if state not in schema.FINAL_STATES:
        return False
    job["state"] = state
    if "(" in state_text:
        job["reason"] = state_text.split("(", 1)[1].rstrip(")")
    outcome = str(footer.get("exit", ""))
    job["exit_code"] = int(outcome.rsplit(" ", 1)[1]) if outcome.startswith("exit code ") else None
    job["signal"] = _signal_number(outcome[len("killed by "):]) if outcome.startswith("killed by ") else None
    ended = footer.get("ended")
    job["ended_at"] = None if ended in (None, "None") else ended
    duration = str(footer.get("duration", ""))
    with contextlib.suppress(ValueError):
        job["duration"] = float(duration.split(" ")[0])
    return True


def _signal_number(name: str) -> int | None:
    import signal

    with contextlib.suppress(KeyError, AttributeError):
        return int(signal.Signals[name.strip()])
    return None


def _check_logs_and_processes(store: Store, jobs, logs_on_disk, report, repair) -> None:
    from ..engine import liveness
    from ..engine.finish import finalise

    for job_id, summary in jobs.items():
        if summary["state"] in schema.ACTIVE_STATES:
            job = store.get(job_id)
            if job.get("backend") == "slurm":
                _check_slurm_job(store, job, report, repair)
            elif job["state"] in schema.ACTIVE_STATES and not _is_settling(job) and not _has_live_process(job, liveness):
                _repair_process_gone(store, job, report, repair, finalise)
        log_path = summary["log_path"]
        if not log_path:
            continue
        exists = log_path in logs_on_disk or os.path.exists(log_path)
        if exists != summary["log_missing"]:
            continue
        drift = Drift("log_missing", job_id, f"{log_path} is missing" if not exists else f"{log_path} is back")
        if repair:
            store.update(job_id, lambda record, missing=not exists: record.update(log_missing=missing))
            drift.repaired = True
        report.drifts.append(drift)


def _check_slurm_job(store: Store, job: dict[str, Any], report: Report, repair: bool) -> None:
    """Ask Slurm about an active Slurm job and finish it when Slurm has ended or forgotten it."""
    from ..backends import slurm

    found = slurm.reconcile(store, job, repair)
    if found is None:
        return
    if found.checked:
        report.drifts.append(Drift("process_gone", job["id"], found.detail, found.repaired))
    else:
        report.unchecked.append(Drift("unchecked", job["id"], found.detail))


def _is_settling(job: dict[str, Any]) -> bool:
    if job.get("supervisor_pid"):
        return False
    from datetime import datetime

    try:
        created = datetime.fromisoformat(job["created_at"]).timestamp()
    except (TypeError, ValueError):
        return False
    return time.time() - created < LAUNCH_SETTLE_SECONDS


def _has_live_process(job: dict[str, Any], liveness) -> bool:
    if job.get("backend", "local") != "local":
        return True
    return liveness.is_alive(job.get("pid"), job.get("pid_create_time")) or \
        liveness.is_alive(job.get("supervisor_pid"), job.get("supervisor_create_time"))


def _repair_process_gone(store: Store, job: dict[str, Any], report: Report, repair: bool, finalise) -> None:
    job_id = job["id"]
    current = store.get(job_id)
    if current["revision"] != job["revision"]:
        return  # a writer changed the job after the comparison, so the next check compares it again
    footer = None
    with contextlib.suppress(OSError):
        footer = logfile.parse(Path(job["log_path"]))["footer"] if job.get("log_path") else None
    final = dict(job)
    from_footer = apply_footer(final, footer)
    detail = (f"recorded {job['state']} but its process and supervisor are gone; "
              + (f"the log footer says {final['state']}" if from_footer else "no footer, so it is lost"))
    drift = Drift("process_gone", job_id, detail)
    if repair:
        if from_footer:
            fields = {k: final[k] for k in ("state", "reason", "exit_code", "signal", "ended_at", "duration")}
            store.update(job_id, lambda record: record.update(fields))
        else:
            finalise(store, job_id, schema.LOST, reason="its process and supervisor ended without recording an outcome",
                     exit_code=None, signum=None, leftovers="not checked (no supervisor)")
        drift.repaired = True
    report.drifts.append(drift)


def _write_report(log_root: Path, report: Report) -> str | None:
    if not log_root.is_dir():
        return None
    try:
        path = logfile.create_log_file(log_root / SYNC_FOLDER, "check")
        logfile.append(path, (report.to_text() + "\n").encode("utf-8", "replace"), new_line=False)
        return str(path)
    except OSError as error:
        log.error("cannot write the check report under %s: %s", log_root / SYNC_FOLDER, error)
        return None
