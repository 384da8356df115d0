"""Errors: rejected requests exit non-zero with a message naming the value and the fix, and leave
an error log under logs/errors/; failures found only when the timer ends are recorded on the job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def error_logs(project) -> list[str]:
    return [path.read_text() for path in sorted((project.log_root / "errors").glob("*.log"))]


def job_logs(project) -> list[Path]:
    return [path for path in project.log_root.glob("*/*.log") if path.parent.name != "errors"]


def test_command_not_found_shell(project):
    result = project.run("run", "--delay", "0", "--", "nonexistent_cmd_xyz --flag")
    assert result.returncode == 3
    assert "command not found" in result.stderr
    assert "'nonexistent_cmd_xyz'" in result.stderr
    assert "--environment" in result.stderr
    assert "full path" in result.stderr
    assert any("nonexistent_cmd_xyz" in text for text in error_logs(project))
    assert job_logs(project) == []


def test_command_not_found_argv(project):
    result = project.run("run", "--delay", "0", "--", "nonexistent_cmd_xyz", "a;b")
    assert result.returncode == 3
    assert "'nonexistent_cmd_xyz'" in result.stderr
    assert any("nonexistent_cmd_xyz" in text for text in error_logs(project))


def test_command_not_found_after_cd(project):
    result = project.run("run", "--delay", "0", "--", "mkdir -p x && echo ok; nonexistent_cmd_xyz")
    assert result.returncode == 3
    assert "'nonexistent_cmd_xyz'" in result.stderr


def test_relative_program_not_executable(project):
    (project.root / "script.sh").write_text("echo hi\n")
    result = project.run("run", "--delay", "0", "--", "./script.sh", "arg")
    assert result.returncode == 3
    assert "'./script.sh'" in result.stderr


def test_missing_cwd(project):
    missing = project.root / "no_such_folder"
    result = project.run("run", "--delay", "0", "--cwd", str(missing), "--", "true")
    assert result.returncode == 3
    assert "working directory not found" in result.stderr
    assert str(missing) in result.stderr
    assert "--cwd" in result.stderr


def test_log_root_under_regular_file(project):
    # Tests may run as root, which ignores file permissions, so the unwritable log root is a
    # path whose parent is a regular file: mkdir fails there for every user.
    blocker = project.root / "blocker"
    blocker.write_text("a regular file\n")
    result = project.run("run", "--delay", "0", "--", "true", env={"BGRUN_LOG_ROOT": str(blocker / "logs")})
    assert result.returncode == 3
    assert "log folder not writable" in result.stderr
    assert str(blocker / "logs") in result.stderr
    assert "BGRUN_LOG_ROOT" in result.stderr
    assert blocker.read_text() == "a regular file\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_log_root_read_only(project):
    project.log_root.chmod(0o500)
    try:
        result = project.run("run", "--delay", "0", "--", "true")
    finally:
        project.log_root.chmod(0o755)
    assert result.returncode == 3
    assert "not writable" in result.stderr


INVALID_RUNS = [
    (("--delay", "-1"), "delay"),
    (("--delay", "nan"), "delay"),
    (("--delay", "inf"), "delay"),
    (("--retries", "-1"), "retries"),
    (("--backoff", "-2"), "backoff"),
    (("--stop-grace", "-1"), "stop_grace"),
    (("--env", "NO_EQUALS_SIGN"), "NAME=VALUE"),
    (("--env", "1BAD=x"), "1BAD"),
    (("--env", "BAD-NAME=x"), "BAD-NAME"),
    (("--environment", "/no/such/venv"), "environment"),
    (("--env-file", "missing.env"), "env file"),
]


@pytest.mark.parametrize(("options", "named"), INVALID_RUNS)
def test_invalid_option_rejected(project, options, named):
    result = project.run("run", *options, "--", "true")
    assert result.returncode == 2
    assert "bgrun: error: invalid" in result.stderr or "cannot read" in result.stderr
    assert named in result.stderr
    assert job_logs(project) == []


def test_delay_not_a_number(project):
    result = project.run("run", "--delay", "soon", "--", "true")
    assert result.returncode == 2
    assert "--delay" in result.stderr


def test_delay_environment_invalid(project):
    result = project.run("run", "--", "true", env={"BGRUN_DELAY": "soon"})
    assert result.returncode == 2
    assert "'soon'" in result.stderr
    assert "the environment" in result.stderr


def test_config_syntax_error(project):
    (project.root / "bgrun.toml").write_text("delay = = 1\n")
    result = project.run("run", "--", "true")
    assert result.returncode == 2
    assert "bgrun.toml" in result.stderr


def test_config_unknown_setting(project):
    (project.root / "bgrun.toml").write_text("delai = 1\n")
    result = project.run("run", "--", "true")
    assert result.returncode == 2
    assert "'delai'" in result.stderr


def test_no_command(project):
    result = project.run("run", "--delay", "0", "--")
    assert result.returncode == 2
    assert "no command given" in result.stderr


def test_command_only_spaces(project):
    result = project.run("run", "--delay", "0", "--", "   ")
    assert result.returncode == 2
    assert "invalid command" in result.stderr
    assert job_logs(project) == []


def test_command_not_utf8(project):
    argv = [os.fsencode(word) for word in project.bgrun_argv("run", "--delay", "0", "--")] + [b"echo \xff"]
    result = subprocess.run(argv, cwd=project.root, env=project.env, stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=60)
    assert result.returncode == 2
    assert b"not valid UTF-8" in result.stderr
    assert b"Traceback" not in result.stderr
    assert job_logs(project) == []


def test_env_value_not_utf8(project):
    argv = [os.fsencode(word) for word in project.bgrun_argv("run", "--delay", "0", "--env")] \
        + [b"X=\xff", b"--", b"true"]
    result = subprocess.run(argv, cwd=project.root, env=project.env, stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=60)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


def test_unknown_job_id(project):
    project.submit("true")
    result = project.run("show", "999")
    assert result.returncode == 4
    assert "no job 999" in result.stderr


def test_invalid_job_id(project):
    project.submit("true")
    result = project.run("show", "../1")
    assert result.returncode == 4
    assert "invalid job id" in result.stderr


def test_program_removed_during_timer(project):
    script = project.root / "vanishing.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    job = project.submit("./vanishing.sh", "arg", options=("--delay", "1"))
    script.unlink()
    done = project.wait_state(job["id"], "failed", "succeeded")
    assert done["state"] == "failed"
    assert done["reason"].startswith("start failed: No such file or directory")
    assert done["exit_code"] is None
    text = project.wait_footer(job["id"])
    assert "[bgrun] start failed: FileNotFoundError" in text
    assert any(f"job {job['id']}: start failed" in log for log in error_logs(project))


def test_start_failure_not_retried(project):
    script = project.root / "vanishing.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    job = project.submit("./vanishing.sh", "arg", options=("--delay", "1", "--retries", "2", "--backoff", "0.1"))
    script.unlink()
    done = project.wait_state(job["id"], "failed", "succeeded")
    assert len(done["attempts"]) <= 1
    assert "attempt 2" not in project.wait_footer(job["id"])


def test_cwd_removed_during_timer(project):
    work = project.root / "work"
    work.mkdir()
    job = project.submit("true", options=("--delay", "1", "--cwd", str(work)))
    work.rmdir()
    done = project.wait_state(job["id"], "failed", "succeeded")
    assert done["state"] == "failed"
    assert "start failed" in done["reason"]


def test_log_deleted_during_timer(project):
    job = project.submit("echo still logged", options=("--delay", "1"))
    Path(job["log_path"]).unlink()
    done = project.wait_state(job["id"], "succeeded", "failed")
    assert done["state"] == "succeeded"
    text = project.wait_footer(job["id"])
    assert "still logged\n" in text


def test_log_folder_deleted_during_timer(project):
    job = project.submit("echo never", options=("--delay", "1"))
    shutil.rmtree(Path(job["log_path"]).parent)
    done = project.wait_state(job["id"], "failed", "succeeded", timeout=30)
    assert done["state"] == "failed"
    assert done["log_missing"] is True


def test_error_log_for_rejection_under_config_root(project, tmp_path):
    folder = tmp_path / "configured"
    folder.mkdir()
    (folder / "bgrun.toml").write_text('log_root = "run_logs"\n')
    (folder / "run_logs").mkdir()
    result = project.run("run", "--delay", "0", "--", "nonexistent_cmd_xyz", cwd=folder)
    assert result.returncode == 3
    assert len(list((folder / "run_logs" / "errors").glob("*.log"))) == 1


def test_python_traceback_never_shown(project):
    result = project.run("run", "--delay", "0", "--cwd", "/proc/self/nonexistent", "--", sys.executable)
    assert "Traceback" not in result.stderr
