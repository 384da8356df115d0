"""The mirror between the job database and the record files, and `bgrun check` on each drift kind.

Each drift case creates the drift on real files and a real SQLite database, shows that `check`
reports it with a non-zero exit, that `check --repair` fixes it, and that a second check is clean.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bgrun import schema
from bgrun.store import records

from .conftest import wait_for


def check(project, *extra: str) -> tuple[int, dict]:
    result = project.run("check", "--json", *extra)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def assert_repaired(project, kind: str, count: int = 1) -> dict:
    """Check reports `count` drifts of `kind`, repair fixes them, and a second check is clean."""
    code, report = check(project)
    assert code == 1
    assert report["counts"][kind] == count
    code, repaired = check(project, "--repair")
    assert code == 1
    assert repaired["repaired"] == len(repaired["drifts"])
    code, after = check(project)
    assert code == 0, after["drifts"]
    assert after["consistent"] is True
    return repaired


def finished_job(project, command: str = "echo hello") -> dict:
    job = project.submit(command)
    project.wait_footer(job["id"])
    return project.job(job["id"])


def db_path(project) -> Path:
    return project.log_root / ".bgrun" / "jobs.db"


def record_file(project, job_id: str) -> Path:
    return project.log_root / ".bgrun" / "jobs" / f"{job_id}.json"


def execute_sql(project, statement: str, *values) -> None:
    connection = sqlite3.connect(db_path(project), isolation_level=None)
    try:
        connection.execute(statement, values)
    finally:
        connection.close()


def copies_agree(project, job_id: str) -> bool:
    connection = sqlite3.connect(db_path(project))
    try:
        row = connection.execute("SELECT data FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
    finally:
        connection.close()
    return row is not None and record_file(project, job_id).read_text(encoding="utf-8") == row[0]


def test_clean_store_is_consistent(project):
    job = finished_job(project)
    code, report = check(project)
    assert code == 0
    assert report["jobs"] == 1
    assert report["record_files"] == 1
    assert copies_agree(project, job["id"])


def test_record_file_missing(project):
    job = finished_job(project)
    record_file(project, job["id"]).unlink()
    assert_repaired(project, "record_file_missing")
    assert copies_agree(project, job["id"])


def test_database_row_missing_imports_backup(project):
    job = finished_job(project)
    backup = record_file(project, job["id"]).read_bytes()
    execute_sql(project, "DELETE FROM jobs WHERE id = ?", int(job["id"]))
    record_file(project, job["id"]).write_bytes(backup)
    assert_repaired(project, "database_row_missing")
    assert project.job(job["id"])["state"] == "succeeded"
    assert copies_agree(project, job["id"])


def test_fields_differ_database_wins_on_older_file(project):
    job = project.submit("echo one")
    old = record_file(project, job["id"]).read_bytes()
    project.wait_footer(job["id"])
    record_file(project, job["id"]).write_bytes(old)
    repaired = assert_repaired(project, "fields_differ")
    assert "the database wins" in repaired["drifts"][0]["detail"]
    assert project.job(job["id"])["state"] == "succeeded"


def test_fields_differ_newer_file_wins(project):
    job = finished_job(project)
    edited = dict(job, reason="edited by hand", revision=job["revision"] + 1)
    record_file(project, job["id"]).write_text(schema.to_json(edited), encoding="utf-8")
    repaired = assert_repaired(project, "fields_differ")
    assert "the record file wins" in repaired["drifts"][0]["detail"]
    assert project.job(job["id"])["reason"] == "edited by hand"
    assert copies_agree(project, job["id"])


def test_record_unreadable_restored_from_database(project):
    job = finished_job(project)
    record_file(project, job["id"]).write_text("{not json", encoding="utf-8")
    assert_repaired(project, "record_unreadable")
    assert copies_agree(project, job["id"])


def test_process_gone_becomes_lost(project):
    job = project.submit("sleep 300")
    running = project.wait_state(job["id"], "running")
    os.kill(running["supervisor_pid"], signal.SIGKILL)
    os.killpg(running["pid"], signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(running["pid"]) or
             psutil.Process(running["pid"]).status() == psutil.STATUS_ZOMBIE, message="the job to die")
    assert_repaired(project, "process_gone")
    lost = project.job(job["id"])
    assert lost["state"] == "lost"
    assert "[bgrun] state: lost" in project.log_text(job["id"])


def test_process_gone_takes_state_from_footer(project):
    job = finished_job(project, "exit 4")
    execute_sql(project, "UPDATE jobs SET state = 'running', data = ? WHERE id = ?",
                schema.to_json(dict(job, state="running", exit_code=None)), int(job["id"]))
    record_file(project, job["id"]).write_text(schema.to_json(dict(job, state="running", exit_code=None)))
    assert_repaired(project, "process_gone")
    repaired = project.job(job["id"])
    assert repaired["state"] == "failed"
    assert repaired["exit_code"] == 4


def test_log_missing_is_marked(project):
    job = finished_job(project)
    Path(job["log_path"]).unlink()
    assert_repaired(project, "log_missing")
    assert project.job(job["id"])["log_missing"] is True


def test_log_without_record_is_imported(project):
    job = finished_job(project, "echo imported; exit 2")
    execute_sql(project, "DELETE FROM jobs WHERE id = ?", int(job["id"]))
    record_file(project, job["id"]).unlink()
    assert_repaired(project, "log_without_record")
    imported = project.job(job["id"])
    assert imported["state"] == "failed"
    assert imported["exit_code"] == 2
    assert imported["command"] == "echo imported; exit 2"
    assert imported["log_path"] == job["log_path"]


def test_corrupt_database_is_rebuilt(project):
    jobs = [finished_job(project, f"echo {n}") for n in range(3)]
    for suffix in ("-wal", "-shm"):
        Path(str(db_path(project)) + suffix).unlink(missing_ok=True)
    db_path(project).write_bytes(b"this is not a database" * 100)
    repaired = assert_repaired(project, "database_unreadable")
    assert "moved aside" in repaired["drifts"][0]["detail"]
    assert {j["id"] for j in json.loads(project.run("list", "--json").stdout)} == {j["id"] for j in jobs}


def test_deleted_database_is_rebuilt_with_every_job(project):
    jobs = [finished_job(project, f"echo {n}") for n in range(3)]
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path(project)) + suffix).unlink(missing_ok=True)
    assert_repaired(project, "database_unreadable")
    listed = json.loads(project.run("list", "--json").stdout)
    assert sorted(j["id"] for j in listed) == sorted(j["id"] for j in jobs)
    for job in jobs:
        assert copies_agree(project, job["id"])


def test_temporary_file_of_dead_writer_is_removed(project):
    job = finished_job(project)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    temp = project.log_root / ".bgrun" / "jobs" / f".{job['id']}.json.{dead.pid}.abcd1234.tmp"
    temp.write_text("{half", encoding="utf-8")
    assert_repaired(project, "temporary_file")
    assert not temp.exists()


def test_report_written_to_sync_folder(project):
    finished_job(project)
    code, report = check(project)
    assert code == 0
    path = Path(report["report_path"])
    assert path.parent == project.log_root / "sync"
    assert path.name.startswith("check_")
    assert path.name.endswith(".log")
    assert "result: consistent" in path.read_text(encoding="utf-8")


def test_clean_periodic_check_writes_no_report(project):
    from bgrun.store.check import run_check

    finished_job(project)
    report = run_check(project.log_root, repair=True, write_clean_report=False)
    assert report.consistent
    assert report.report_path is None


@pytest.mark.parametrize("point", ["db-written", "record-temp-written", "record-written", "committed"])
def test_crash_between_writes_is_repaired(project, point):
    job = finished_job(project)
    script = ("import sys; from bgrun.store import Store; "
              "Store(sys.argv[1]).update(sys.argv[2], lambda j: j.update(reason='changed'))")
    crashed = subprocess.run([sys.executable, "-c", script, str(project.log_root), job["id"]],
                             env=dict(project.env, BGRUN_FAULT_POINT=point))
    assert crashed.returncode == -signal.SIGKILL
    for path in (project.log_root / ".bgrun" / "jobs").iterdir():
        if path.name.endswith(".json"):
            records.read_record(path)  # never a half-written record file
    check(project, "--repair")
    code, report = check(project)
    assert code == 0, report["drifts"]
    assert copies_agree(project, job["id"])


@pytest.mark.parametrize("point", ["db-written", "record-written"])
def test_crash_during_launch_is_repaired(project, point):
    result = project.run("run", "--delay", "0", "--", "echo hi", env={"BGRUN_FAULT_POINT": point})
    assert result.returncode == -signal.SIGKILL
    check(project, "--repair")
    code, report = check(project)
    assert code == 0, report["drifts"]


def test_four_writers_give_two_hundred_jobs(project):
    script = (
        "import sys\n"
        "from bgrun.engine.spawn import RunRequest, submit\n"
        "for n in range(50):\n"
        "    submit(RunRequest(command='sleep 1', delay=3600, cwd=sys.argv[1], name=f'w{sys.argv[2]}_{n}'))\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(project.root), str(w)], env=project.env)
               for w in range(4)]
    for writer in writers:
        assert writer.wait(timeout=240) == 0
    listed = json.loads(project.run("list", "--json").stdout)
    assert len({j["id"] for j in listed}) == 200
    files = list((project.log_root / ".bgrun" / "jobs").glob("*.json"))
    assert len(files) == 200
    assert len({j["log_path"] for j in listed}) == 200
    code, report = check(project)
    assert code == 0, report["drifts"][:5]


def test_stop_refuses_reused_pid(project):
    job = project.submit("sleep 300")
    running = project.wait_state(job["id"], "running")
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        os.kill(running["supervisor_pid"], signal.SIGKILL)
        os.killpg(running["pid"], signal.SIGKILL)
        create_time = psutil.Process(stranger.pid).create_time()
        store = project.store()
        store.update(job["id"], lambda j: j.update(pid=stranger.pid, pid_create_time=create_time - 100.0))
        store.close()
        result = project.run("stop", job["id"])
        assert result.returncode != 0
        assert "belongs to another process" in result.stderr
        assert stranger.poll() is None
        assert psutil.Process(stranger.pid).status() != psutil.STATUS_ZOMBIE
    finally:
        stranger.kill()
        stranger.wait()


def test_remove_leaves_foreign_file_alone(project):
    job = finished_job(project)
    victim = project.root / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    store = project.store()
    store.update(job["id"], lambda j: j.update(log_path=str(victim)))
    store.close()
    result = project.run("remove", job["id"])
    assert result.returncode == 0, result.stderr
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert "left alone" in result.stdout


@pytest.mark.parametrize("field, value", [("state", "bogus"), ("revision", "99"), ("exit_code", "three"),
                                          ("command", None)])
def test_invalid_record_never_imported(project, field, value):
    job = finished_job(project)
    execute_sql(project, "DELETE FROM jobs WHERE id = ?", int(job["id"]))
    record_file(project, job["id"]).write_text(schema.to_json(dict(job, **{field: value})), encoding="utf-8")
    code, repaired = check(project, "--repair")
    assert code == 1
    assert repaired["counts"]["record_unreadable"] == 1
    assert field in repaired["drifts"][0]["detail"]
    listed = project.run("list")
    assert listed.returncode == 0, listed.stderr


def test_store_of_older_schema_opens(project):
    job = finished_job(project)
    execute_sql(project, "DROP INDEX jobs_summary")
    execute_sql(project, "ALTER TABLE jobs DROP COLUMN file_mtime_ns")
    listed = json.loads(project.run("list", "--json").stdout)
    assert [j["id"] for j in listed] == [job["id"]]
    code, report = check(project)
    assert code == 0, report["drifts"]


def test_locked_database_is_not_broken(project):
    job = finished_job(project)
    holder = sqlite3.connect(db_path(project), isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        from bgrun.store import Store, database

        original = database.BUSY_TIMEOUT_MS
        database.BUSY_TIMEOUT_MS = 200
        try:
            store = Store(project.log_root)
            with pytest.raises(Exception) as raised:
                store.create({"name": "x", "category": "model_dev", "command": "true", "cwd": "/",
                              "log_path": "/tmp/x.log"})
            assert "locked" in str(raised.value)
            store.close()
        finally:
            database.BUSY_TIMEOUT_MS = original
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    code, report = check(project)
    assert code == 0, report["drifts"]
    assert db_path(project).exists()
    assert project.job(job["id"])["state"] == "succeeded"
