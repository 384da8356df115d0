"""Exit status: an exit code and a signal are recorded apart, even when the launcher was killed."""

from __future__ import annotations

import os
import signal


def test_exit_zero_succeeds(project):
    job = project.submit("exit 0")
    done = project.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "succeeded"
    assert done["exit_code"] == 0
    assert done["signal"] is None


def test_exit_137_is_exit_code(project):
    job = project.submit_from_killed_group("exit 137")
    done = project.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "failed"
    assert done["exit_code"] == 137
    assert done["signal"] is None
    text = project.wait_footer(job["id"])
    assert "[bgrun] exit: exit code 137\n" in text


def test_sigkill_is_signal(project):
    job = project.submit_from_killed_group("sleep", "300")
    running = project.wait_state(job["id"], "running")
    os.kill(running["pid"], signal.SIGKILL)
    done = project.wait_state(job["id"], "failed", "succeeded", "cancelled")
    assert done["state"] == "failed"
    assert done["signal"] == 9
    assert done["exit_code"] is None
    text = project.wait_footer(job["id"])
    assert "[bgrun] exit: killed by SIGKILL\n" in text


def test_sigterm_from_outside_is_failure(project):
    job = project.submit("sleep", "300")
    running = project.wait_state(job["id"], "running")
    os.kill(running["pid"], signal.SIGTERM)
    done = project.wait_state(job["id"], "failed", "succeeded", "cancelled")
    assert done["state"] == "failed"
    assert done["signal"] == 15
    assert done["exit_code"] is None


def test_shell_killed_by_own_signal(project):
    job = project.submit("echo before; kill -9 $$")
    done = project.wait_state(job["id"], "failed", "succeeded")
    assert done["signal"] == 9
    assert done["exit_code"] is None


def test_exit_code_in_attempts(project):
    job = project.submit("exit 5")
    done = project.wait_state(job["id"], "failed")
    assert len(done["attempts"]) == 1
    assert done["attempts"][0]["exit_code"] == 5
    assert done["attempts"][0]["signal"] is None
    assert done["attempts"][0]["state"] == "failed"
