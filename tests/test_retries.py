"""Retries: each attempt is marked in the one log and recorded, with backoff between attempts."""

from __future__ import annotations

import re
from datetime import datetime

from .conftest import wait_for


def seconds_between(start_iso: str, end_iso: str) -> float:
    return (datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso)).total_seconds()


def test_retries_until_exhausted(project):
    job = project.submit("echo try; exit 3", options=("--delay", "0", "--retries", "2", "--backoff", "0.2"))
    done = project.wait_state(job["id"], "failed")
    assert [attempt["number"] for attempt in done["attempts"]] == [1, 2, 3]
    assert [attempt["exit_code"] for attempt in done["attempts"]] == [3, 3, 3]
    assert done["attempt"] == 3
    assert done["exit_code"] == 3
    assert done["reason"] == "all 3 attempts failed"


def test_retries_marked_in_one_log(project):
    job = project.submit("echo try; exit 3", options=("--delay", "0", "--retries", "2", "--backoff", "0.2"))
    text = project.wait_footer(job["id"])
    started = re.findall(r"^\[bgrun\] attempt (\d) of 3 started", text, re.MULTILINE)
    ended = re.findall(r"^\[bgrun\] attempt (\d) of 3 ended: failed, exit code 3$", text, re.MULTILINE)
    assert started == ["1", "2", "3"]
    assert ended == ["1", "2", "3"]
    assert text.count("\ntry\n") == 3
    assert text.count("[bgrun] retrying in ") == 2
    assert text.count("[bgrun] state: ") == 1
    assert len(list((project.log_root / "model_dev").glob("*.log"))) == 1


def test_retry_succeeds_second_time(project):
    line = "if [ -f marker ]; then echo second; else touch marker; echo first; exit 1; fi"
    job = project.submit(line, options=("--delay", "0", "--retries", "3", "--backoff", "0.2"))
    done = project.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "succeeded"
    assert [attempt["state"] for attempt in done["attempts"]] == ["failed", "succeeded"]
    assert done["exit_code"] == 0
    assert done["reason"] is None


def test_retry_backoff_doubles(project):
    job = project.submit("exit 1", options=("--delay", "0", "--retries", "2", "--backoff", "0.3"))
    done = project.wait_state(job["id"], "failed")
    first, second, third = done["attempts"]
    assert seconds_between(first["ended_at"], second["started_at"]) >= 0.29
    assert seconds_between(second["ended_at"], third["started_at"]) >= 0.59
    text = project.wait_footer(job["id"])
    assert "[bgrun] retrying in 0.3 s\n" in text
    assert "[bgrun] retrying in 0.6 s\n" in text


def test_retry_pending_is_scheduled(project):
    job = project.submit("exit 1", options=("--delay", "0", "--retries", "1", "--backoff", "30"))
    pending = wait_for(lambda: (lambda j: j if j["attempts"] and j["attempts"][0]["ended_at"] else None)(
        project.job(job["id"])), message="the first attempt to end")
    assert pending["state"] == "scheduled"
    assert pending["attempt"] == 2
    assert "retry 2 of 2 in 30 s" in pending["reason"]


def test_stop_during_backoff_not_retried(project):
    job = project.submit("exit 1", options=("--delay", "0", "--retries", "3", "--backoff", "30"))
    wait_for(lambda: project.job(job["id"])["attempt"] == 2, message="the retry to be scheduled")
    result = project.run("stop", job["id"], check=True)
    assert "cancelled" in result.stdout
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["reason"] == "stopped while waiting to retry (attempt 2 of 4)"
    assert len(done["attempts"]) == 1
    assert "attempt 2 of 4 started" not in project.wait_footer(job["id"])


def test_stopped_job_not_retried(project):
    job = project.submit("sleep", "300", options=("--delay", "0", "--retries", "3", "--backoff", "0.1"))
    project.wait_state(job["id"], "running")
    project.run("stop", job["id"], "--grace", "2", check=True)
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["signal"] == 15
    assert len(done["attempts"]) == 1
    text = project.wait_footer(job["id"])
    assert "attempt 2 of 4" not in text
    assert "retrying" not in text


def test_retries_from_config(project):
    (project.root / "bgrun.toml").write_text("retries = 1\nbackoff = 0.1\n")
    job = project.submit("exit 2")
    done = project.wait_state(job["id"], "failed")
    assert len(done["attempts"]) == 2
