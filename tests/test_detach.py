"""Jobs run detached: their own session and process group, no terminal, and no tie to the launcher."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import psutil

from .conftest import wait_for

PTY_SPAWN = "import pty, sys; pty.spawn(sys.argv[1:])"


def proc_stat_fields(pid: int) -> list[str]:
    """Return the fields of /proc/PID/stat after the command name, so field 3 is index 0."""
    text = open(f"/proc/{pid}/stat").read()
    return text[text.rindex(")") + 2:].split()


def running_job(project, *command: str) -> dict:
    job = project.submit(*command)
    return project.wait_state(job["id"], "running")


def test_job_process_detached(project):
    job = running_job(project, "sleep", "300")
    pid = job["pid"]
    assert os.getsid(pid) == pid
    assert os.getpgid(pid) == pid
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert proc_stat_fields(pid)[4] == "0"
    assert os.readlink(f"/proc/{pid}/fd/1") == job["log_path"]
    assert os.readlink(f"/proc/{pid}/fd/2") == job["log_path"]


def test_supervisor_detached(project):
    job = running_job(project, "sleep", "300")
    supervisor = psutil.Process(job["supervisor_pid"])
    assert supervisor.ppid() != os.getpid()
    assert os.getsid(supervisor.pid) != os.getsid(0)
    assert proc_stat_fields(supervisor.pid)[4] == "0"


def test_survives_launcher_group_kill(project):
    job = project.submit_from_killed_group("sleep 1; echo finished", options=("--delay", "0.2"))
    done = project.wait_state(job["id"], "succeeded")
    assert done["exit_code"] == 0
    text = project.wait_footer(job["id"])
    assert "\nfinished\n" in text
    assert "[bgrun] state: succeeded" in text


def test_survives_terminal_hangup(project):
    job_file = project.root / "job.json"
    shell_pid_file = project.root / "shell.pid"
    run = shlex.join(project.bgrun_argv("run", "--json", "--delay", "0.2", "--", "sleep 1; echo finished"))
    line = f"echo $$ > {shell_pid_file}; {run} > {job_file}.part; mv {job_file}.part {job_file}; exec sleep 300"
    terminal = subprocess.Popen([sys.executable, "-c", PTY_SPAWN, "/bin/sh", "-c", line], cwd=project.root,
                                env=project.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    project.track(terminal.pid)
    wait_for(job_file.exists, message="bgrun inside the terminal to print the job")
    shell_pid = int(shell_pid_file.read_text())
    project.track(shell_pid)

    os.killpg(shell_pid, signal.SIGHUP)
    terminal.kill()
    terminal.wait()

    job_id = json.loads(job_file.read_text())["id"]
    done = project.wait_state(job_id, "succeeded")
    assert done["exit_code"] == 0
    assert "\nfinished\n" in project.wait_footer(job_id)


def test_job_survives_hangup_to_supervisor(project):
    job = running_job(project, "sleep 1; echo finished")
    os.kill(job["supervisor_pid"], signal.SIGHUP)
    os.kill(job["supervisor_pid"], signal.SIGINT)
    done = project.wait_state(job["id"], "succeeded")
    assert done["exit_code"] == 0
