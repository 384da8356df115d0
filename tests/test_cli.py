"""The bgrun CLI verbs: list, show, logs (with --follow), rerun and remove."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .conftest import wait_for

LIST_COLUMNS = ["ID", "STATE", "CATEGORY", "NAME", "COMMAND", "START", "DURATION", "LOG"]


def test_run_prints_id_and_log(project):
    result = project.run("run", "--delay", "0", "--", "echo hi", check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "job 1 scheduled, starts in 0 s"
    assert lines[1].startswith(f"log: {project.log_root}/model_dev/echo_")


def test_list_newest_first(project):
    ids = [project.submit(f"echo {index}")["id"] for index in range(3)]
    result = project.run("list", check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split() == LIST_COLUMNS
    assert [line.split()[0] for line in lines[1:]] == list(reversed(ids))


def test_list_row_columns(project):
    job = project.submit("echo hi")
    project.wait_state(job["id"], "succeeded")
    row = project.run("list", check=True).stdout.splitlines()[1]
    assert row.split()[:4] == [job["id"], "succeeded", "model_dev", "echo"]
    assert row.endswith(job["log_path"])


def test_list_json_newest_first(project):
    ids = [project.submit("true")["id"] for _ in range(3)]
    listed = json.loads(project.run("list", "--json", check=True).stdout)
    assert [job["id"] for job in listed] == list(reversed(ids))


def test_list_filters(project):
    done = project.submit("true")
    project.wait_state(done["id"], "succeeded")
    waiting = project.submit("true", options=("--delay", "30", "--category", "later"))
    by_state = json.loads(project.run("list", "--json", "--state", "scheduled", check=True).stdout)
    assert [job["id"] for job in by_state] == [waiting["id"]]
    by_category = json.loads(project.run("list", "--json", "--category", "model_dev", check=True).stdout)
    assert [job["id"] for job in by_category] == [done["id"]]
    limited = json.loads(project.run("list", "--json", "--limit", "1", check=True).stdout)
    assert [job["id"] for job in limited] == [waiting["id"]]


def test_list_empty(project):
    result = project.run("list", check=True)
    assert result.stdout.startswith("no jobs under ")


def test_list_long_command_cut(project):
    job = project.submit("echo " + "x" * 100)
    row = project.run("list", check=True).stdout.splitlines()[1]
    assert "echo " + "x" * 34 + "…" in row
    assert row.endswith(job["log_path"])


def test_show_json(project):
    job = project.submit("echo hi")
    project.wait_state(job["id"], "succeeded")
    shown = json.loads(project.run("show", job["id"], "--json", check=True).stdout)
    assert shown["id"] == job["id"]
    assert shown["state"] == "succeeded"
    assert shown["command"] == "echo hi"
    assert shown["log_path"] == job["log_path"]


def test_show_text(project):
    job = project.submit("echo hi")
    project.wait_state(job["id"], "succeeded")
    text = project.run("show", job["id"], check=True).stdout
    assert f"id: {job['id']}\n" in text
    assert "state: succeeded\n" in text
    assert "attempt 1: succeeded" in text


def test_logs_prints_log_bytes(project):
    job = project.submit(r"printf 'out\377\n'")
    project.wait_footer(job["id"])
    result = subprocess.run(project.bgrun_argv("logs", job["id"]), cwd=project.root, env=project.env,
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout == Path(job["log_path"]).read_bytes()


def follow(project, job_id: str) -> subprocess.CompletedProcess:
    return subprocess.run(project.bgrun_argv("logs", "-f", job_id), cwd=project.root, env=project.env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def test_logs_follow_exit_code(project):
    job = project.submit("echo first; sleep 0.5; echo second; exit 7")
    result = follow(project, job["id"])
    assert result.returncode == 7
    assert b"\nfirst\nsecond\n" in result.stdout
    assert result.stdout.endswith(b"[bgrun] sync: record written and verified\n")
    assert result.stdout == Path(job["log_path"]).read_bytes()


def test_logs_follow_success(project):
    job = project.submit("sleep 0.5; echo done")
    assert follow(project, job["id"]).returncode == 0


def test_logs_follow_signal(project):
    job = project.submit("sleep 0.5; kill -9 $$")
    assert follow(project, job["id"]).returncode == 137


def test_logs_follow_cancelled(project):
    job = project.submit("sleep", "300")
    project.wait_state(job["id"], "running")
    follower = subprocess.Popen(project.bgrun_argv("logs", "--follow", job["id"]), cwd=project.root,
                                env=project.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    project.track(follower.pid)
    project.run("stop", job["id"], check=True)
    out, _ = follower.communicate(timeout=60)
    assert follower.returncode == 143
    assert b"[bgrun] state: cancelled" in out


def test_logs_follow_scheduled_job(project):
    job = project.submit("echo late", options=("--delay", "1"))
    result = follow(project, job["id"])
    assert result.returncode == 0
    assert b"\nlate\n" in result.stdout


def test_logs_follow_finished_job(project):
    job = project.submit("exit 4")
    project.wait_footer(job["id"])
    assert follow(project, job["id"]).returncode == 4


def test_logs_missing_file(project):
    job = project.submit("true")
    project.wait_footer(job["id"])
    Path(job["log_path"]).unlink()
    result = project.run("logs", job["id"])
    assert result.returncode == 1
    assert "missing" in result.stderr
    assert job["log_path"] in result.stderr


def test_rerun_same_settings(project):
    (project.root / "work").mkdir()
    first = project.submit("echo $GREETING; pwd", options=("--delay", "0", "--cwd", "work", "--category", "exp",
                                                             "--name", "greet", "--env", "GREETING=hello"))
    project.wait_footer(first["id"])
    result = project.run("rerun", first["id"], "--delay", "0", "--json", check=True)
    second = json.loads(result.stdout)
    assert second["id"] != first["id"]
    for key in ("command", "cwd", "category", "name", "env", "argv", "log_root"):
        assert second[key] == first[key], key
    assert second["log_path"] != first["log_path"]
    text = project.wait_footer(second["id"])
    assert f"\nhello\n{project.root / 'work'}\n" in text


def test_rerun_argv_job(project):
    first = project.submit("echo", "a;b")
    project.wait_footer(first["id"])
    second = json.loads(project.run("rerun", first["id"], "--delay", "0", "--json", check=True).stdout)
    assert second["argv"] == ["echo", "a;b"]
    assert "\na;b\n" in project.wait_footer(second["id"])


def test_rerun_keeps_retry_settings(project):
    first = project.submit("exit 1", options=("--delay", "0", "--retries", "1", "--backoff", "0.1"))
    project.wait_footer(first["id"])
    second = json.loads(project.run("rerun", first["id"], "--delay", "0", "--json", check=True).stdout)
    assert second["retries"] == 1
    assert second["backoff"]["initial"] == 0.1


def test_remove_finished_job(project):
    job = project.submit("true")
    project.wait_footer(job["id"])
    result = project.run("remove", job["id"], check=True)
    assert f"job {job['id']} removed" in result.stdout
    assert not Path(job["log_path"]).exists()
    assert not (project.log_root / ".bgrun" / "jobs" / f"{job['id']}.json").exists()
    assert project.run("show", job["id"]).returncode == 4
    assert json.loads(project.run("list", "--json", check=True).stdout) == []


def test_remove_running_rejected(project):
    job = project.submit("sleep", "300")
    project.wait_state(job["id"], "running")
    result = project.run("remove", job["id"])
    assert result.returncode == 2
    assert f"bgrun stop {job['id']}" in result.stderr
    assert Path(job["log_path"]).exists()


def test_remove_keeps_id_unused(project):
    first = project.submit("true")
    project.wait_footer(first["id"])
    project.run("remove", first["id"], check=True)
    second = project.submit("true")
    assert int(second["id"]) > int(first["id"])


def test_verbs_without_store(project):
    result = project.run("show", "1")
    assert result.returncode == 2
    assert "no bgrun jobs under log root" in result.stderr


def test_version(project):
    result = project.run("--version", check=True)
    assert result.stdout.startswith("bgrun ")


def test_follow_sees_output_while_running(project):
    job = project.submit("echo early; sleep 300")
    project.wait_state(job["id"], "running")
    follower = subprocess.Popen(project.bgrun_argv("logs", "-f", job["id"]), cwd=project.root, env=project.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    project.track(follower.pid)
    first_lines = b""
    while b"early\n" not in first_lines:
        line = follower.stdout.readline()
        assert line, "logs -f ended before the job printed"
        first_lines += line
    assert follower.poll() is None
    project.run("stop", job["id"], check=True)
    follower.communicate(timeout=60)
    wait_for(lambda: follower.returncode is not None, message="logs -f to exit")
