"""Job records: both copies agree byte for byte, hold no secrets, survive concurrent writers, and
finished jobs leave no zombie processes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import psutil

from .conftest import wait_for

SECRET = "s3cr3t-token-value-9f2c"


def database_text(project, job_id: str) -> str:
    connection = sqlite3.connect(project.log_root / ".bgrun" / "jobs.db")
    try:
        return connection.execute("SELECT data FROM jobs WHERE id = ?", (int(job_id),)).fetchone()[0]
    finally:
        connection.close()


def record_bytes(project, job_id: str) -> bytes:
    return (project.log_root / ".bgrun" / "jobs" / f"{job_id}.json").read_bytes()


def test_copies_agree_byte_for_byte(project):
    job = project.submit("echo hi; exit 2")
    project.wait_footer(job["id"])
    assert database_text(project, job["id"]).encode("utf-8") == record_bytes(project, job["id"])


def test_copies_agree_while_scheduled(project):
    job = project.submit("true", options=("--delay", "30"))
    assert database_text(project, job["id"]).encode("utf-8") == record_bytes(project, job["id"])


def test_record_matches_show_json(project):
    job = project.submit("echo hi")
    project.wait_footer(job["id"])
    shown = json.loads(project.run("show", job["id"], "--json", check=True).stdout)
    assert shown == json.loads(record_bytes(project, job["id"]))


def test_job_id_is_string(project):
    job = project.submit("true")
    assert isinstance(job["id"], str)
    project.wait_footer(job["id"])
    assert isinstance(json.loads(record_bytes(project, job["id"]))["id"], str)
    listed = json.loads(project.run("list", "--json", check=True).stdout)
    assert isinstance(listed[0]["id"], str)


def test_env_additions_stored(project):
    job = project.submit("echo $ADDED", options=("--delay", "0", "--env", "ADDED=visible value"))
    assert job["env"] == {"ADDED": "visible value"}
    project.wait_footer(job["id"])
    assert json.loads(record_bytes(project, job["id"]))["env"] == {"ADDED": "visible value"}


def test_launcher_secret_not_stored(project):
    job = project.submit("echo job ran", env={"MY_API_TOKEN": SECRET})
    text = project.wait_footer(job["id"])
    assert SECRET not in database_text(project, job["id"])
    assert SECRET.encode() not in record_bytes(project, job["id"])
    assert SECRET not in text


def test_launcher_secret_reaches_job(project):
    job = project.submit("echo token=$MY_API_TOKEN", env={"MY_API_TOKEN": SECRET})
    assert f"token={SECRET}\n" in project.wait_footer(job["id"])


def test_env_file_values_not_stored(project):
    (project.root / "job.env").write_text(f"FILE_SECRET={SECRET}\n")
    job = project.submit("echo from-file=$FILE_SECRET", options=("--delay", "0", "--env-file", "job.env"))
    assert f"from-file={SECRET}\n" in project.wait_footer(job["id"])
    assert SECRET.encode() not in record_bytes(project, job["id"])
    assert SECRET not in database_text(project, job["id"])


def test_record_revision_grows(project):
    job = project.submit("true")
    assert job["revision"] >= 1
    project.wait_footer(job["id"])
    assert project.job(job["id"])["revision"] > job["revision"]


def test_concurrent_runs_lose_nothing(project):
    count = 8
    processes = [subprocess.Popen(project.bgrun_argv("run", "--json", "--delay", "0", "--", f"echo job-{index}"),
                                  cwd=project.root, env=project.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for index in range(count)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * count, [err for _, err in outputs]
    jobs = [json.loads(out) for out, _ in outputs]
    assert len({job["id"] for job in jobs}) == count
    assert len({job["log_path"] for job in jobs}) == count
    for index, job in enumerate(jobs):
        text = project.wait_footer(job["id"])
        assert f"\njob-{index}\n" in text
        assert project.job(job["id"])["state"] == "succeeded"
        assert database_text(project, job["id"]).encode("utf-8") == record_bytes(project, job["id"])
    listed = json.loads(project.run("list", "--json", check=True).stdout)
    assert sorted(job["id"] for job in listed) == sorted(job["id"] for job in jobs)


def test_concurrent_stop_and_finish(project):
    jobs = [project.submit("sleep", "300") for _ in range(3)]
    for job in jobs:
        project.wait_state(job["id"], "running")
    stoppers = [subprocess.Popen(project.bgrun_argv("stop", job["id"]), cwd=project.root, env=project.env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for job in jobs]
    for stopper in stoppers:
        stopper.communicate(timeout=60)
    assert [stopper.returncode for stopper in stoppers] == [0, 0, 0]
    for job in jobs:
        assert project.job(job["id"])["state"] == "cancelled"
        project.wait_footer(job["id"])
        assert database_text(project, job["id"]).encode("utf-8") == record_bytes(project, job["id"])


def zombies_of(parents: set[int]) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["status", "ppid"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE and process.info["ppid"] in parents:
            found.append(process)
    return found


def test_no_zombies_after_jobs(project):
    jobs = [project.submit(line) for line in ("true", "exit 3", "sleep 0.2 & echo bg", "kill -9 $$")]
    supervisors = {job["supervisor_pid"] for job in jobs}
    for job in jobs:
        project.wait_footer(job["id"])
    for job in jobs:
        wait_for(lambda: not psutil.pid_exists(job["supervisor_pid"])
                 or psutil.Process(job["supervisor_pid"]).status() == psutil.STATUS_ZOMBIE,
                 message=f"the supervisor of job {job['id']} to exit")
    assert zombies_of(supervisors | {os.getpid()}) == []


def test_no_zombie_under_running_supervisor(project):
    job = project.submit("sleep", "300")
    running = project.wait_state(job["id"], "running")
    supervisor = psutil.Process(running["supervisor_pid"])
    wait_for(lambda: [child.pid for child in supervisor.children()] == [running["pid"]],
             message="the started hook to be reaped")
    assert zombies_of({supervisor.pid}) == []


def test_launcher_killed_before_commit(project):
    result = project.run("run", "--delay", "0", "--", "true", env={"BGRUN_FAULT_POINT": "db-written"})
    assert result.returncode == -9
    job = project.submit("echo hi")
    project.wait_footer(job["id"])
    claiming = [path for path in project.log_root.glob("*/*.log")
                if path.read_text().startswith(f"[bgrun] job: {job['id']}\n")]
    assert claiming == [Path(job["log_path"])]



def test_now_iso_reads_clock_once(monkeypatch):
    """A second boundary between two clock readings must not move the time back.

    The clock is replaced here, because no real clock can be made to cross a second at a chosen
    point of a call.
    """
    import time
    from datetime import datetime
    from types import SimpleNamespace

    from bgrun.store import mirror

    readings = iter([1796000000.9995, 1796000001.0004])
    clock = SimpleNamespace(time=lambda: next(readings), localtime=time.localtime, strftime=time.strftime)
    monkeypatch.setattr(mirror, "time", clock)

    stamp = mirror.now_iso()

    assert abs(datetime.fromisoformat(stamp).timestamp() - 1796000000.999) < 0.0015
