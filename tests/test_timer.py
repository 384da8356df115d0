"""The start timer: its default, the three ways to set it, their precedence, and when jobs start."""

from __future__ import annotations

import time
from datetime import datetime


def seconds_between(start_iso: str, end_iso: str) -> float:
    return (datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso)).total_seconds()


def test_delay_default_one_second(project):
    job = project.submit("true", options=())
    assert job["delay"] == 1.0
    assert abs(seconds_between(job["created_at"], job["scheduled_for"]) - 1.0) < 0.01
    done = project.wait_state(job["id"], "succeeded")
    assert seconds_between(done["created_at"], done["started_at"]) >= 0.99


def test_delay_zero_starts_at_once(project):
    job = project.submit("true", options=("--delay", "0"))
    assert job["delay"] == 0.0
    done = project.wait_state(job["id"], "succeeded")
    assert seconds_between(done["created_at"], done["started_at"]) < 2.0


def test_delay_from_environment(project):
    job = project.submit("true", options=(), env={"BGRUN_DELAY": "0.3"})
    assert job["delay"] == 0.3


def test_delay_from_config_file(project):
    (project.root / "bgrun.toml").write_text("delay = 0.4\n")
    job = project.submit("true", options=())
    assert job["delay"] == 0.4


def test_delay_environment_beats_config(project):
    (project.root / "bgrun.toml").write_text("delay = 0.4\n")
    job = project.submit("true", options=(), env={"BGRUN_DELAY": "0.3"})
    assert job["delay"] == 0.3


def test_delay_flag_beats_environment(project):
    (project.root / "bgrun.toml").write_text("delay = 0.4\n")
    job = project.submit("true", options=("--delay", "0.2"), env={"BGRUN_DELAY": "0.3"})
    assert job["delay"] == 0.2


def test_delay_flag_zero_beats_environment(project):
    job = project.submit("true", options=("--delay", "0"), env={"BGRUN_DELAY": "30"})
    assert job["delay"] == 0.0


def test_delay_config_under_bgrun_table(project):
    (project.root / "bgrun.toml").write_text("[bgrun]\ndelay = 0.6\n")
    job = project.submit("true", options=())
    assert job["delay"] == 0.6


def test_run_returns_before_delay_ends(project):
    started = time.monotonic()
    job = project.submit("true", options=("--delay", "5"))
    returned_after = time.monotonic() - started
    assert returned_after < 4.0
    assert project.job(job["id"])["state"] == "scheduled"
    assert project.job(job["id"])["started_at"] is None
    assert "[bgrun] attempt" not in project.log_text(job["id"])
    done = project.wait_state(job["id"], "succeeded", timeout=30)
    late_by = seconds_between(done["scheduled_for"], done["started_at"])
    assert late_by >= -0.01
    assert late_by < 1.0
