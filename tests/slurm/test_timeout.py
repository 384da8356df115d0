"""Slurm ending bgrun jobs at their time limit, against the real cluster (see conftest.py).

Both jobs run with `--time=1`, one minute. slurmctld checks time limits from a periodic loop, so
a job ends at least 60 s after it starts, and about 90 s after in the runs so far. The module fixture submits both jobs at once, so
the two tests share that wait instead of adding it up. A step killed by SIGKILL outside a time
limit is covered by test_check_finishes_job_slurm_ended in test_slurm_backend.py.
"""

from __future__ import annotations

import json

import pytest

from ..conftest import Project, wait_for
from .conftest import cancel_active_jobs

# Covers the 60 s limit, slurmctld's time limit check interval and KillWait (5 s on the test cluster).
TIME_LIMIT_WAIT = 300.0
# A command that ignores SIGTERM outlives the step's KillWait, so Slurm ends the job with SIGKILL
# to every process, the step included, before the step can write the footer.
IGNORES_SIGTERM = "trap '' TERM; sleep 600"

# The first test waits up to TIME_LIMIT_WAIT, which pytest.ini's 300 s test timeout would cut short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * TIME_LIMIT_WAIT)]


@pytest.fixture(scope="module")
def timed_jobs(tmp_path_factory, cluster):
    """Submit a plain `sleep 600` and one that ignores SIGTERM, both with a one-minute time limit."""
    project = Project(tmp_path_factory.mktemp("timeout") / "project")
    project.env["SLURM_CONF"] = str(cluster.slurm_conf)
    project.env["BGRUN_BACKEND"] = "slurm"
    options = ("--delay", "0", "--sbatch-option=--time=1")
    jobs = {
        "plain": project.submit("sleep 600", options=options),
        "ignores_sigterm": project.submit(IGNORES_SIGTERM, options=options),
    }
    yield project, jobs
    cancel_active_jobs(project, cluster)
    project.stop_leftover_jobs()


def check_report(project: Project, *args: str) -> dict:
    result = project.run("check", "--json", *args)
    return json.loads(result.stdout) | {"returncode": result.returncode}


def test_time_limit_recorded_as_timeout(timed_jobs, cluster):
    project, jobs = timed_jobs
    job = jobs["plain"]
    assert "TimeLimit=00:01:00" in cluster.scontrol_job(job["backend_id"]).stdout

    done = project.wait_state(job["id"], "failed", "succeeded", "cancelled", "lost", timeout=TIME_LIMIT_WAIT)
    text = project.wait_footer(job["id"])

    assert done["state"] == "failed"
    assert "Slurm TIMEOUT" in done["reason"]
    assert done["signal"] == 15
    assert "[bgrun] attempt 1 of 1 ended: failed, killed by SIGTERM\n" in text
    assert "[bgrun] state: failed (Slurm TIMEOUT, killed by SIGTERM)\n" in text
    assert "[bgrun] exit: killed by SIGTERM\n" in text
    assert text.endswith("[bgrun] sync: record written and verified\n")
    # The step records the outcome while Slurm still shows the job as COMPLETING.
    wait_for(lambda: "JobState=TIMEOUT" in cluster.scontrol_job(job["backend_id"]).stdout,
             message="Slurm to record the job as TIMEOUT")
    report = check_report(project)
    assert report["returncode"] == 0, report
    assert [drift for drift in report["drifts"] if drift["job"] == job["id"]] == []


def test_time_limit_without_footer_repaired(timed_jobs, cluster):
    project, jobs = timed_jobs
    job = jobs["ignores_sigterm"]
    project.wait_state(job["id"], "running")

    # The step dies with the job and the record stays running, so wait on Slurm, not on bgrun.
    wait_for(lambda: "JobState=TIMEOUT" in cluster.scontrol_job(job["backend_id"]).stdout,
             timeout=TIME_LIMIT_WAIT, interval=0.5, message="Slurm to end the job at its time limit")
    assert project.job(job["id"])["state"] == "running"
    assert "\n[bgrun] state: " not in project.log_text(job["id"])

    report = check_report(project, "--repair")
    drifts = [drift for drift in report["drifts"] if drift["job"] == job["id"]]
    assert [drift["kind"] for drift in drifts] == ["process_gone"], report
    assert drifts[0]["repaired"] is True
    assert "ended as TIMEOUT" in drifts[0]["detail"]

    done = project.wait_state(job["id"], "failed")
    text = project.wait_footer(job["id"])
    assert done["reason"].startswith("Slurm TIMEOUT")
    assert "[bgrun] state: failed (Slurm TIMEOUT" in text
    assert "[bgrun] leftover processes: not checked (Slurm job)\n" in text
    assert text.endswith("[bgrun] sync: record written and verified\n")
    assert text.count("[bgrun] state: ") == 1
    again = check_report(project)
    assert again["returncode"] == 0, again
    assert [drift for drift in again["drifts"] if drift["job"] == job["id"]] == []
