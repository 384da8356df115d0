"""Shared fixtures: a scratch project with a log root, the real CLI, and waits on conditions.

Every test runs real processes. Jobs a test leaves running are stopped at teardown by process
group, after checking that each recorded PID still belongs to the job (PID and start time).
Processes left in a job's group or session, processes carrying the job's BGRUN_JOB marker and
processes a test registered with `Project.track` are stopped too.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest

from bgrun.engine import liveness, stop
from bgrun.store import Store

DEFAULT_TIMEOUT = 60.0


def wait_for(predicate: Callable[[], object], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.05,
             message: str = "condition") -> object:
    """Poll `predicate` until it returns a true value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # the condition may read files that are being written
            last_error = error
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message} (last error: {last_error!r})")


class Project:
    """A scratch project folder with `logs/`, and a way to run the real `bgrun` CLI in it."""

    def __init__(self, root: Path):
        self.root = root
        self.log_root = root / "logs"
        self.log_root.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BGRUN_")}
        self.tracked: list[psutil.Process] = []

    def bgrun_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bgrun", *args]

    def track(self, pid: int) -> None:
        """Stop this process at teardown if it still runs (a process a test started itself)."""
        if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
            raise ValueError(f"invalid PID to track: {pid!r}")
        try:
            self.tracked.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass

    def run(self, *args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False,
            timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        full_env = dict(self.env, **(env or {}))
        result = subprocess.run([sys.executable, "-m", "bgrun", *args], cwd=cwd or self.root, env=full_env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"bgrun {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def submit(self, *command: str, options: tuple[str, ...] = ("--delay", "0"), **kwargs) -> dict:
        """Run `bgrun run --json OPTIONS -- COMMAND` and return the job it printed."""
        result = self.run("run", "--json", *options, "--", *command, check=True, **kwargs)
        return json.loads(result.stdout)

    def submit_from_killed_group(self, *command: str, options: tuple[str, ...] = ("--delay", "0")) -> dict:
        """Submit from a shell in its own process group, then SIGKILL that whole group at once.

        The shell runs `bgrun run` and then sleeps, so the group is still there to kill when the
        job has been submitted.
        """
        output = self.root / f"submitted-{len(self.tracked)}.json"
        line = shlex.join(self.bgrun_argv("run", "--json", *options, "--", *command)) \
            + f" > {shlex.quote(str(output))}.part; mv {shlex.quote(str(output))}.part {shlex.quote(str(output))}; exec sleep 300"
        shell = subprocess.Popen(["/bin/sh", "-c", line], cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.track(shell.pid)
        try:
            wait_for(output.exists, message="the launcher to print the job")
        finally:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
        return json.loads(output.read_text())

    def store(self) -> Store:
        return Store(self.log_root)

    def job(self, job_id: str) -> dict:
        store = self.store()
        try:
            return store.get(job_id)
        finally:
            store.close()

    def wait_state(self, job_id: str, *states: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        return wait_for(lambda: (lambda j: j if j["state"] in states else None)(self.job(job_id)),
                        timeout=timeout, message=f"job {job_id} to reach {states}")

    def wait_footer(self, job_id: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Wait until the job's log ends with its sync line; return the log text."""
        log_path = Path(self.job(job_id)["log_path"])

        def footer_done():
            text = log_path.read_bytes().decode("utf-8", "replace")
            return text if "\n[bgrun] sync: " in text else None
        return wait_for(footer_done, timeout=timeout, message=f"the footer of job {job_id}")

    def log_text(self, job_id: str) -> str:
        return Path(self.job(job_id)["log_path"]).read_bytes().decode("utf-8", "replace")

    def stop_leftover_jobs(self) -> None:
        for process in self.tracked:
            kill_if_same(process)
        if not (self.log_root / ".bgrun").is_dir():
            return
        store = self.store()
        try:
            jobs = store.list()
        except Exception:
            return
        finally:
            store.close()
        for job in jobs:
            for pid_key, time_key in (("pid", "pid_create_time"), ("supervisor_pid", "supervisor_create_time")):
                process = liveness.process_if_alive(job.get(pid_key), job.get(time_key))
                if process is None:
                    continue
                try:
                    if pid_key == "pid":
                        os.killpg(process.pid, signal.SIGKILL)
                    else:
                        process.kill()
                except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
                    pass
            for process in group_members_started_after(job.get("pid"), job.get("pid_create_time")):
                kill_if_same(process)
            marker = stop.job_marker(job)
            for process in stop.marked_processes(marker) if marker else []:
                kill_if_same(process)


def kill_if_same(process: psutil.Process) -> None:
    """SIGKILL `process` unless it ended or its PID now belongs to another process."""
    try:
        if process.is_running():
            process.kill()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def group_members_started_after(leader_pid: int | None, leader_create_time: float | None) -> list[psutil.Process]:
    """Return processes left in the group or session of a job's main process, started no earlier than it."""
    if not leader_pid or leader_create_time is None:
        return []
    members = []
    for process in psutil.process_iter(["create_time"]):
        try:
            if process.info["create_time"] + liveness.CREATE_TIME_TOLERANCE < leader_create_time:
                continue
            if os.getpgid(process.pid) == leader_pid or os.getsid(process.pid) == leader_pid:
                members.append(process)
        except (ProcessLookupError, PermissionError, OSError, TypeError):
            continue
    return members


@pytest.fixture
def project(tmp_path: Path):
    project = Project(tmp_path / "project")
    yield project
    project.stop_leftover_jobs()
