"""`bgrun stop` of a running Slurm job honours stop_grace, against the real cluster (see conftest.py).

The test cluster's KillWait is 5 s (`.ci/slurm/up.sh`), so a job that needs more than 5 s to
clean up after SIGTERM finishes its clean-up only when bgrun waits out its stop_grace itself.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from ..conftest import wait_for

KILL_WAIT_SECONDS = 5
CLEAN_UP_SECONDS = KILL_WAIT_SECONDS + 2


def stop_when_started(project, job: dict) -> tuple[float, dict, str]:
    """Run `bgrun stop` once the job has printed 'started' and return the seconds it took, the job and its log."""
    project.wait_state(job["id"], "running")
    wait_for(lambda: "\nstarted\n" in project.log_text(job["id"]), message="the job to print 'started'")
    started = time.monotonic()
    project.run("stop", job["id"], check=True, timeout=120)
    elapsed = time.monotonic() - started
    return elapsed, project.job(job["id"]), project.wait_footer(job["id"])


@pytest.mark.slow
def test_stop_waits_for_clean_up(project, cluster):
    line = (f"trap 'echo got TERM; sleep {CLEAN_UP_SECONDS}; echo cleaned up; exit 5' TERM; "
            "echo started; sleep 300 & wait")
    job = project.submit(line, options=("--delay", "0", "--stop-grace", "30"))
    elapsed, done, text = stop_when_started(project, job)
    assert done["state"] == "cancelled"
    assert done["reason"] == "stopped by request, exit code 5"
    assert done["exit_code"] == 5
    assert "\ngot TERM\ncleaned up\n" in text
    assert CLEAN_UP_SECONDS <= elapsed < 30
    assert text.count("[bgrun] state: cancelled") == 1
    wait_for(lambda: "JobState=CANCELLED" in cluster.scontrol_job(done["backend_id"]).stdout,
             message="Slurm to record the job as cancelled")


@pytest.mark.slow
def test_stop_cancels_after_grace(project, cluster):
    grace = 8
    line = "trap 'echo got TERM' TERM; echo started; while true; do sleep 1; done"
    job = project.submit(line, options=("--delay", "0", "--stop-grace", str(grace)))
    project.wait_state(job["id"], "running")
    wait_for(lambda: "\nstarted\n" in project.log_text(job["id"]), message="the job to print 'started'")
    started = time.monotonic()
    stop = subprocess.Popen(project.bgrun_argv("stop", job["id"]), cwd=project.root, env=project.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    project.track(stop.pid)
    wait_for(lambda: "\ngot TERM\n" in project.log_text(job["id"]), timeout=grace - 2,
             message="the job to get SIGTERM within its stop_grace")
    assert stop.poll() is None
    assert project.job(job["id"])["state"] == "running"

    output, errors = stop.communicate(timeout=120)
    elapsed = time.monotonic() - started
    done = project.job(job["id"])
    text = project.wait_footer(job["id"])
    assert stop.returncode == 0, errors
    assert done["state"] == "cancelled", output
    assert done["reason"].startswith("stopped by request")
    # The shell traps both SIGTERMs, the step's and scancel's, and goes on, so SIGKILL ends it KillWait later.
    assert elapsed >= grace + KILL_WAIT_SECONDS
    assert text.count("\ngot TERM\n") >= 2
    assert text.count("[bgrun] state: cancelled") == 1
    wait_for(lambda: "JobState=CANCELLED" in cluster.scontrol_job(done["backend_id"]).stdout,
             message="Slurm to record the job as cancelled")
