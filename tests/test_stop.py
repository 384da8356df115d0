"""Stopping a job: its whole process tree, during the timer, and with SIGKILL after the grace period."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import psutil

from .conftest import wait_for

THREE_CHILDREN = """
import os, subprocess, sys, time
children = [
    subprocess.Popen(["sleep", "300"]),
    subprocess.Popen(["sleep", "300"]),
    subprocess.Popen(["sleep", "300"], start_new_session=True),
]
with open("children.pids.part", "w") as handle:
    handle.write(" ".join(str(child.pid) for child in children))
os.rename("children.pids.part", "children.pids")
print("ready", flush=True)
time.sleep(300)
"""

IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(300)"

DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open("daemon.pid.part", "w") as handle:
            handle.write(str(os.getpid()))
        os.rename("daemon.pid.part", "daemon.pid")
        time.sleep(300)
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(300)
"""


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_ready(project, job_id: str) -> dict:
    """Wait until the job is recorded as running and has printed `ready`; return the job."""
    project.wait_state(job_id, "running")
    wait_for(lambda: "ready\n" in project.log_text(job_id), message="the job to print ready")
    return project.job(job_id)


def test_stop_whole_tree(project):
    (project.root / "three.py").write_text(THREE_CHILDREN)
    job = project.submit(sys.executable, "three.py")
    running = wait_ready(project, job["id"])
    pids = [int(pid) for pid in (project.root / "children.pids").read_text().split()]
    processes = [psutil.Process(pid) for pid in [running["pid"], *pids]]
    for process in processes:
        project.track(process.pid)
    assert os.getsid(pids[2]) == pids[2]

    result = project.run("stop", job["id"], "--json", check=True)

    stopped = json.loads(result.stdout)
    assert stopped["state"] == "cancelled"
    assert stopped["signal"] == 15
    assert stopped["exit_code"] is None
    assert stopped["reason"] == "stopped by request, killed by SIGTERM"
    for process in processes:
        assert wait_for(lambda: gone(process), timeout=10, message=f"process {process.pid} to end")


def test_stop_footer(project):
    job = project.submit("sleep", "300")
    project.wait_state(job["id"], "running")
    project.run("stop", job["id"], check=True)
    text = project.wait_footer(job["id"])
    assert "[bgrun] state: cancelled (stopped by request, killed by SIGTERM)\n" in text
    assert "[bgrun] exit: killed by SIGTERM\n" in text


def test_stop_during_timer(project):
    job = project.submit("echo should-not-run", options=("--delay", "30"))
    supervisor = psutil.Process(job["supervisor_pid"])
    result = project.run("stop", job["id"], check=True)
    assert "cancelled" in result.stdout
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["reason"] == "stopped before it started"
    assert done["started_at"] is None
    assert done["pid"] is None
    text = project.wait_footer(job["id"])
    assert "[bgrun] attempt" not in text
    assert "should-not-run\n" not in text
    assert "[bgrun] exit: never started\n" in text
    assert wait_for(lambda: gone(supervisor), timeout=10, message="the supervisor to exit")


def test_stop_ignoring_job_after_grace(project):
    job = project.submit(sys.executable, "-c", IGNORES_SIGTERM)
    wait_ready(project, job["id"])
    started = time.monotonic()
    project.run("stop", job["id"], "--grace", "1", check=True)
    elapsed = time.monotonic() - started
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["signal"] == 9
    assert elapsed >= 1.0
    assert elapsed < 8.0


def test_stop_grace_from_run_option(project):
    job = project.submit(sys.executable, "-c", IGNORES_SIGTERM, options=("--delay", "0", "--stop-grace", "0.5"))
    wait_ready(project, job["id"])
    started = time.monotonic()
    project.run("stop", job["id"], check=True)
    assert time.monotonic() - started < 8.0
    assert project.job(job["id"])["signal"] == 9


def test_stop_finished_job(project):
    job = project.submit("true")
    project.wait_state(job["id"], "succeeded")
    result = project.run("stop", job["id"])
    assert result.returncode == 0
    assert "already succeeded" in result.stdout
    assert project.job(job["id"])["state"] == "succeeded"


def test_stop_job_that_exits_cleanly(project):
    line = "trap 'echo got term; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
    job = project.submit(line)
    wait_ready(project, job["id"])
    project.run("stop", job["id"], "--grace", "5", check=True)
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["exit_code"] == 0
    assert "got term\n" in project.wait_footer(job["id"])


def test_stop_unknown_job(project):
    project.submit("true")
    result = project.run("stop", "999")
    assert result.returncode == 4
    assert "no job 999" in result.stderr


def test_stop_reaches_daemonized_grandchild(project):
    (project.root / "daemon.py").write_text(DAEMON)
    job = project.submit(sys.executable, "daemon.py")
    project.wait_state(job["id"], "running")
    daemon_pid_file = project.root / "daemon.pid"
    wait_for(daemon_pid_file.exists, message="the daemon to write its PID")
    daemon = psutil.Process(int(daemon_pid_file.read_text()))
    project.track(daemon.pid)
    project.run("stop", job["id"], check=True)
    assert project.job(job["id"])["state"] == "cancelled"
    assert wait_for(lambda: gone(daemon), timeout=10, message="the daemon to end")


def test_stop_suspended_job(project):
    job = project.submit("sleep", "300")
    running = project.wait_state(job["id"], "running")
    os.kill(running["pid"], signal.SIGSTOP)
    project.run("stop", job["id"], "--grace", "20", check=True)
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["signal"] == 15


def test_stop_without_supervisor(project):
    job = project.submit("sleep", "300")
    running = project.wait_state(job["id"], "running")
    os.kill(running["supervisor_pid"], signal.SIGKILL)
    result = project.run("stop", job["id"], check=True)
    assert "cancelled" in result.stdout
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["reason"] == "stopped; its supervisor was gone"
    assert wait_for(lambda: gone(psutil.Process(running["pid"])) if psutil.pid_exists(running["pid"]) else True,
                    timeout=10, message="the job to end")


def test_supervisor_sigterm_during_timer_cancels(project):
    job = project.submit("echo should-not-run", options=("--delay", "30"))
    os.kill(job["supervisor_pid"], signal.SIGTERM)
    done = project.wait_state(job["id"], "cancelled")
    assert done["reason"] == "stopped before it started"
    assert "should-not-run\n" not in project.wait_footer(job["id"])


def test_stop_many_children(project):
    line = "for i in $(seq 20); do sleep 300 & echo $! >> children.pids; done; echo ready; wait"
    job = project.submit(line)
    wait_ready(project, job["id"])
    wait_for(lambda: len((project.root / "children.pids").read_text().split()) == 20,
             message="all children to start")
    children = [psutil.Process(int(pid)) for pid in (project.root / "children.pids").read_text().split()]
    project.run("stop", job["id"], check=True)
    assert project.job(job["id"])["state"] == "cancelled"
    for child in children:
        assert wait_for(lambda: gone(child), timeout=10, message=f"child {child.pid} to end")
