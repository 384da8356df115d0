"""The slurm backend against a real single-node Slurm cluster (see conftest.py)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from ..conftest import wait_for


def slurm_ids_in_log(text: str) -> list[str]:
    return re.findall(r"^\[bgrun\] slurm job id: (\d+)$", text, re.MULTILINE)


def test_success_has_header_and_footer(project):
    job = project.submit("echo hello from slurm")
    assert job["backend"] == "slurm"
    assert job["backend_id"].isdigit()
    done = project.wait_state(job["id"], "succeeded")
    text = project.wait_footer(job["id"])
    assert done["exit_code"] == 0
    assert done["signal"] is None
    assert done["started_at"] is not None
    assert text.startswith(f"[bgrun] job: {job['id']}\n[bgrun] name: echo\n")
    assert "[bgrun] scheduled for: " in text
    assert slurm_ids_in_log(text) == [job["backend_id"]]
    assert re.search(r"^\[bgrun\] attempt 1 of 1 started: \S+ pid \d+$", text, re.MULTILINE)
    assert "\nhello from slurm\n" in text
    assert "[bgrun] attempt 1 of 1 ended: succeeded, exit code 0\n" in text
    assert "[bgrun] state: succeeded\n" in text
    assert "[bgrun] exit: exit code 0\n" in text
    assert re.search(r"^\[bgrun\] duration: \d+\.\d{3} s$", text, re.MULTILINE)
    assert "[bgrun] leftover processes: 0\n" in text
    assert text.endswith("[bgrun] sync: record written and verified\n")


def test_argv_job_runs_without_shell(project):
    job = project.submit("printf", "%s|", "a b", "$HOME")
    project.wait_state(job["id"], "succeeded")
    text = project.wait_footer(job["id"])
    assert "a b|$HOME|" in text


def slurm_final_state(cluster, slurm_id: str) -> str:
    """Wait until Slurm shows the job ended, and return its `JobState=… ExitCode=…` fields."""
    def ended():
        fields = dict(re.findall(r"(\w+)=(\S*)", cluster.scontrol_job(slurm_id).stdout))
        state = fields.get("JobState")
        return state not in (None, "PENDING", "RUNNING", "COMPLETING") and f"JobState={state} ExitCode={fields.get('ExitCode')}"
    return wait_for(ended, message=f"Slurm to end job {slurm_id}")


def test_failing_exit_code(project, cluster):
    job = project.submit("echo failing >&2; exit 3")
    done = project.wait_state(job["id"], "failed")
    text = project.wait_footer(job["id"])
    assert done["exit_code"] == 3
    assert done["signal"] is None
    assert "\nfailing\n" in text
    assert "[bgrun] exit: exit code 3\n" in text
    assert slurm_final_state(cluster, job["backend_id"]) == "JobState=FAILED ExitCode=3:0"


def test_killed_by_signal(project, cluster):
    job = project.submit("echo before; kill -KILL $$")
    done = project.wait_state(job["id"], "failed")
    text = project.wait_footer(job["id"])
    assert done["signal"] == 9
    assert done["exit_code"] is None
    assert "[bgrun] exit: killed by SIGKILL\n" in text
    assert slurm_final_state(cluster, job["backend_id"]) == "JobState=FAILED ExitCode=0:9"


def test_success_completes_in_slurm(project, cluster):
    job = project.submit("true")
    project.wait_state(job["id"], "succeeded")
    assert slurm_final_state(cluster, job["backend_id"]) == "JobState=COMPLETED ExitCode=0:0"


def test_stop_running_job(project, cluster):
    job = project.submit("echo started; sleep 300")
    project.wait_state(job["id"], "running")
    started = time.monotonic()
    result = project.run("stop", job["id"], check=True)
    elapsed = time.monotonic() - started
    done = project.job(job["id"])
    text = project.wait_footer(job["id"])
    assert done["state"] == "cancelled", result.stdout
    assert done["reason"].startswith("stopped by request")
    assert elapsed < 30
    assert text.count("[bgrun] state: cancelled") == 1
    wait_for(lambda: "JobState=CANCELLED" in cluster.scontrol_job(done["backend_id"]).stdout,
             message="Slurm to record the job as cancelled")


def test_scancel_outside_bgrun_is_cancelled(project, cluster):
    import subprocess

    job = project.submit("sleep 300")
    running = project.wait_state(job["id"], "running")
    subprocess.run(["scancel", running["backend_id"]], env=cluster.env, check=True, timeout=30)
    done = project.wait_state(job["id"], "cancelled")
    assert done["reason"].startswith("Slurm CANCELLED")


def test_retries_resubmit_each_attempt(project):
    job = project.submit("echo try; exit 3", options=("--delay", "0", "--retries", "1", "--backoff", "1"))
    done = project.wait_state(job["id"], "failed")
    text = project.wait_footer(job["id"])
    ids = slurm_ids_in_log(text)
    assert [attempt["number"] for attempt in done["attempts"]] == [1, 2]
    assert [attempt["exit_code"] for attempt in done["attempts"]] == [3, 3]
    assert done["reason"] == "all 2 attempts failed"
    assert len(ids) == 2
    assert ids[0] != ids[1]
    assert done["backend_id"] == ids[1]
    assert "[bgrun] attempt 1 of 2 ended: failed, exit code 3\n" in text
    assert "[bgrun] retrying in 1 s\n" in text
    assert "[bgrun] attempt 2 of 2 ended: failed, exit code 3\n" in text
    assert text.count("\ntry\n") == 2
    assert text.count("[bgrun] state: ") == 1


def test_retry_succeeds_second_time(project):
    line = "if [ -f marker ]; then echo second; else touch marker; echo first; exit 1; fi"
    job = project.submit(line, options=("--delay", "0", "--retries", "2", "--backoff", "1"))
    done = project.wait_state(job["id"], "succeeded")
    assert [attempt["state"] for attempt in done["attempts"]] == ["failed", "succeeded"]


def test_short_delay_waited_before_sbatch(project):
    job = project.submit("echo late", options=("--delay", "3"))
    assert job["backend_id"] is None
    assert job["supervisor_pid"] is not None
    done = project.wait_state(job["id"], "succeeded")
    created = datetime.fromisoformat(done["created_at"])
    started = datetime.fromisoformat(done["started_at"])
    assert done["backend_id"].isdigit()
    assert (started - created).total_seconds() >= 3


def test_long_delay_uses_begin(project, cluster):
    job = project.submit("echo much later", options=("--delay", "600"))
    assert job["backend_id"].isdigit()
    assert job["state"] == "scheduled"
    slurm = cluster.scontrol_job(job["backend_id"]).stdout
    assert "JobState=PENDING" in slurm
    assert "Reason=BeginTime" in slurm
    begin = re.search(r"\bStartTime=(\S+)", slurm).group(1)
    assert (datetime.fromisoformat(begin) - datetime.now()).total_seconds() > 500


def test_stop_pending_job(project, cluster):
    job = project.submit("echo never", options=("--delay", "600"))
    project.run("stop", job["id"], check=True)
    done = project.job(job["id"])
    text = project.wait_footer(job["id"])
    assert done["state"] == "cancelled"
    assert "before it started" in done["reason"]
    assert done["exit_code"] is None
    assert done["signal"] is None
    assert "[bgrun] exit: never started\n" in text
    assert "\nnever\n" not in text
    assert "JobState=CANCELLED" in cluster.scontrol_job(job["backend_id"]).stdout


def test_stop_during_short_delay(project):
    job = project.submit("echo never", options=("--delay", "20"))
    project.run("stop", job["id"], check=True)
    done = project.job(job["id"])
    assert done["state"] == "cancelled"
    assert done["backend_id"] is None
    assert done["reason"] == "stopped before it started"


def test_sbatch_options_reach_slurm(project, cluster):
    (project.root / "bgrun.toml").write_text('slurm_options = ["--comment=from-toml"]\n')
    job = project.submit("sleep 30", options=("--delay", "0", "--sbatch-option=--time=5"))
    slurm = cluster.scontrol_job(job["backend_id"]).stdout
    assert "Comment=from-toml" in slurm
    assert "TimeLimit=00:05:00" in slurm
    assert "Requeue=0" in slurm


def test_check_after_controller_restart(project, cluster):
    job = project.submit("sleep 8; echo done")
    project.wait_state(job["id"], "running")
    cluster.script("restart-ctld.sh")
    result = project.run("check", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert project.job(job["id"])["state"] == "running"
    done = project.wait_state(job["id"], "succeeded")
    assert done["exit_code"] == 0


def kill_step(project, job_id: str) -> None:
    """SIGKILL the step (the main process's parent), so the batch job ends without a footer."""
    import psutil

    job = project.job(job_id)
    psutil.Process(job["pid"]).parent().kill()


def test_check_finishes_job_slurm_ended(project, cluster):
    job = project.submit("sleep 300")
    project.wait_state(job["id"], "running")
    kill_step(project, job["id"])
    wait_for(lambda: "JobState=FAILED" in cluster.scontrol_job(job["backend_id"]).stdout,
             message="Slurm to record the job as failed")
    result = project.run("check", "--repair", "--json")
    report = json.loads(result.stdout)
    drifts = [drift for drift in report["drifts"] if drift["job"] == job["id"]]
    done = project.job(job["id"])
    assert [drift["kind"] for drift in drifts] == ["process_gone"]
    assert drifts[0]["repaired"] is True
    assert done["state"] == "failed"
    assert done["reason"].startswith("Slurm FAILED")
    text = project.wait_footer(job["id"])
    assert "[bgrun] state: failed (Slurm FAILED" in text
    assert "\n[bgrun] attempt 1 of 1 ended: failed, " in text
    assert [attempt["state"] for attempt in done["attempts"]] == ["failed"]
    assert done["attempts"][0]["ended_at"] == done["ended_at"]
    slurm_end = re.search(r"\bEndTime=(\S+)", cluster.scontrol_job(job["backend_id"]).stdout).group(1)
    assert done["ended_at"].startswith(slurm_end + ".000")


def test_check_after_purge(project, cluster):
    finished = project.submit("echo finished")
    project.wait_state(finished["id"], "succeeded")
    project.wait_footer(finished["id"])
    broken = project.submit("sleep 300")
    project.wait_state(broken["id"], "running")
    kill_step(project, broken["id"])
    wait_for(lambda: "JobState=FAILED" in cluster.scontrol_job(broken["backend_id"]).stdout,
             message="Slurm to record the job as failed")
    cluster.script("purge-jobs.sh")
    assert cluster.scontrol_job(finished["backend_id"]).returncode != 0
    assert cluster.scontrol_job(broken["backend_id"]).returncode != 0

    result = project.run("check", "--repair", "--json")
    report = json.loads(result.stdout)
    drifts = {drift["job"]: drift for drift in report["drifts"]}
    assert finished["id"] not in drifts
    assert project.job(finished["id"])["state"] == "succeeded"
    assert drifts[broken["id"]]["kind"] == "process_gone"
    assert "has no record of" in drifts[broken["id"]]["detail"]
    lost = project.job(broken["id"])
    assert lost["state"] == "lost"
    assert "[bgrun] state: lost" in project.wait_footer(broken["id"])
    again = project.run("check", "--json")
    assert again.returncode == 0, again.stdout


def test_missing_config_is_usage_error(project):
    if Path("/etc/slurm/slurm.conf").exists():
        pytest.skip("/etc/slurm/slurm.conf exists, so a missing SLURM_CONF is no error here")
    env = {key: value for key, value in project.env.items() if key != "SLURM_CONF"}
    project.env = env
    result = project.run("run", "--delay", "0", "--", "echo hi")
    assert result.returncode == 2
    assert "SLURM_CONF is not set" in result.stderr
    assert "/etc/slurm/slurm.conf" in result.stderr


def test_missing_sbatch_is_usage_error(project):
    project.env["PATH"] = str(project.root)
    result = project.run("run", "--delay", "0", "--", "/bin/echo", "hi")
    assert result.returncode == 2
    assert "sbatch not found on PATH" in result.stderr


def test_unreachable_controller_is_start_error(project, cluster):
    conf = project.root / "down.conf"
    text = cluster.slurm_conf.read_text()
    conf.write_text(re.sub(r"(?m)^SlurmctldPort=\S+$", "SlurmctldPort=6999", text))
    assert "SlurmctldPort=6999" in conf.read_text()
    project.env["SLURM_CONF"] = str(conf)
    started = time.monotonic()
    result = project.run("run", "--delay", "0", "--", "echo hi")
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert "SLURM_CONF" in result.stderr
    assert elapsed < 40

