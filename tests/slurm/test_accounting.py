"""The slurm backend reading purged jobs from `sacct`, on a cluster with slurmdbd and MariaDB.

This module starts its own cluster with `CI_SLURM_ACCOUNTING=1 .ci/slurm/up.sh`, on ports other
than those of the session `cluster` fixture, so both can run in one pytest session. Set
`CI_SLURM_ACCOUNTING_PORTS=CTLD,SLURMD,DBD,MYSQL` to choose the ports. Without it, the fixture
takes four free ports from the kernel.

After `purge-jobs.sh`, `scontrol show job` no longer finds a job, and bgrun queries `sacct`. On the
session cluster, without accounting, the same job without a footer becomes `lost`
(test_slurm_backend.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from ..conftest import Project, wait_for
from .conftest import SCRIPT_TIMEOUT, SCRIPTS, Cluster, cancel_active_jobs

# Record fields that the step and finalise() change when a job ends.
ENDING_FIELDS = ("state", "reason", "exit_code", "signal", "ended_at", "duration", "attempts",
                 "leftover_processes")
# Per test, including the module fixture's up.sh. Installing slurmdbd and MariaDB took 17.2 s in the
# one run measured (.ci/slurm/README.md), so this leaves room for a slow mirror.
ACCOUNTING_SETUP_TIMEOUT = 600

pytestmark = pytest.mark.timeout(ACCOUNTING_SETUP_TIMEOUT)


def free_ports(count: int) -> list[int]:
    """Return `count` TCP ports on 127.0.0.1 that the kernel reports free now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def accounting_ports() -> list[str]:
    text = os.environ.get("CI_SLURM_ACCOUNTING_PORTS", "")
    if not text:
        return [str(port) for port in free_ports(4)]
    ports = text.split(",")
    if len(ports) != 4 or not all(port.isdigit() for port in ports):
        raise ValueError(f"invalid CI_SLURM_ACCOUNTING_PORTS={text!r}: expected CTLD,SLURMD,DBD,MYSQL port numbers")
    return ports


@pytest.fixture(scope="module")
def accounting_cluster():
    if os.geteuid() != 0:
        pytest.skip("the Slurm test cluster needs root: .ci/slurm/up.sh installs packages and starts slurmctld as root")
    # Not tmp_path_factory: munged rejects a socket under pytest's 0700 folders (see conftest.py).
    state = Path(tempfile.mkdtemp(prefix="slurm-acct.", dir="/tmp"))
    state.chmod(0o755)
    ctld, slurmd, dbd, mysql = accounting_ports()
    env = {**os.environ, "CI_SLURM_ACCOUNTING": "1", "CI_SLURM_CTLD_PORT": ctld, "CI_SLURM_SLURMD_PORT": slurmd,
           "CI_SLURM_DBD_PORT": dbd, "CI_SLURM_MYSQL_PORT": mysql}
    try:
        result = subprocess.run([str(SCRIPTS / "up.sh"), str(state)], env=env, capture_output=True, text=True,
                                timeout=ACCOUNTING_SETUP_TIMEOUT - 60)
    except subprocess.TimeoutExpired:
        subprocess.run([str(SCRIPTS / "down.sh"), str(state)], timeout=SCRIPT_TIMEOUT)
        pytest.skip(f"CI_SLURM_ACCOUNTING=1 .ci/slurm/up.sh did not finish within {ACCOUNTING_SETUP_TIMEOUT - 60} s")
    if result.returncode != 0:
        subprocess.run([str(SCRIPTS / "down.sh"), str(state)], timeout=SCRIPT_TIMEOUT)
        pytest.skip("slurmdbd or MariaDB could not be installed or started by CI_SLURM_ACCOUNTING=1 "
                    f".ci/slurm/up.sh: {result.stderr.strip()[-500:]}")
    yield Cluster(state, state / "slurm.conf")
    subprocess.run([str(SCRIPTS / "down.sh"), str(state)], check=True, timeout=SCRIPT_TIMEOUT)


@pytest.fixture
def project(tmp_path: Path, accounting_cluster: Cluster):
    """A scratch project whose `bgrun` runs use the slurm backend of the accounting cluster."""
    project = Project(tmp_path / "project")
    project.env["SLURM_CONF"] = str(accounting_cluster.slurm_conf)
    project.env["BGRUN_BACKEND"] = "slurm"
    yield project
    cancel_active_jobs(project, accounting_cluster)
    project.stop_leftover_jobs()


def sacct_state(cluster: Cluster, slurm_id: str) -> str:
    """Return `STATE|EXITCODE` of the job as sacct reports it, or "" when sacct has no record."""
    result = subprocess.run(["sacct", "-n", "-P", "-X", "-j", slurm_id, "-o", "State,ExitCode"], env=cluster.env,
                            capture_output=True, text=True, timeout=30)
    return result.stdout.strip()


def check_report(project: Project, *args: str) -> dict:
    result = project.run("check", "--json", *args)
    return json.loads(result.stdout) | {"returncode": result.returncode}


def drifts_of(report: dict, job_id: str) -> list[dict]:
    return [drift for drift in report["drifts"] if drift["job"] == job_id]


def show(project: Project, job_id: str) -> dict:
    return json.loads(project.run("show", "--json", job_id, check=True).stdout)


def kill_step(project: Project, job_id: str) -> None:
    """SIGKILL the step (the main process's parent), so the batch job ends without a footer."""
    import psutil

    psutil.Process(project.job(job_id)["pid"]).parent().kill()


def rewind_to_running(project: Project, job_id: str, running: dict, log_bytes: bytes) -> None:
    """Put back the record and log the job had while it ran, as if the step's final writes were lost.

    A Slurm job that ends COMPLETED or FAILED by its exit code has run the step to the end, so
    this is the only way to get such a job with an active record and no footer.
    """
    Path(running["log_path"]).write_bytes(log_bytes)
    store = project.store()
    try:
        store.update(job_id, lambda record: record.update({key: running.get(key) for key in ENDING_FIELDS}))
    finally:
        store.close()


def run_and_rewind(project: Project, cluster: Cluster, command: str, slurm_state: str) -> dict:
    """Run `command` to its end in Slurm, rewind bgrun's copy to running and return the job."""
    job = project.submit(command)
    running = project.wait_state(job["id"], "running")
    wait_for(lambda: "\nstarted\n" in project.log_text(job["id"]), message=f"job {job['id']} to print 'started'")
    log_bytes = Path(running["log_path"]).read_bytes()
    project.wait_footer(job["id"])
    wait_for(lambda: sacct_state(cluster, job["backend_id"]).startswith(slurm_state + "|"),
             message=f"sacct to report Slurm job {job['backend_id']} as {slurm_state}")
    rewind_to_running(project, job["id"], running, log_bytes)
    return job


def test_finished_jobs_unchanged_after_purge(project, accounting_cluster):
    succeeded = project.submit("echo fine")
    failed = project.submit("echo failing; exit 3")
    project.wait_state(succeeded["id"], "succeeded")
    project.wait_state(failed["id"], "failed")
    project.wait_footer(succeeded["id"])
    project.wait_footer(failed["id"])
    accounting_cluster.script("purge-jobs.sh")
    assert accounting_cluster.scontrol_job(succeeded["backend_id"]).returncode != 0
    assert accounting_cluster.scontrol_job(failed["backend_id"]).returncode != 0

    report = check_report(project, "--repair")

    assert report["returncode"] == 0, report
    assert drifts_of(report, succeeded["id"]) == []
    assert drifts_of(report, failed["id"]) == []
    assert show(project, succeeded["id"])["state"] == "succeeded"
    show_output = show(project, failed["id"])
    assert show_output["state"] == "failed"
    assert show_output["exit_code"] == 3
    # The step exits as its command did, so Slurm's state and exit code match bgrun's.
    assert sacct_state(accounting_cluster, succeeded["backend_id"]) == "COMPLETED|0:0"
    assert sacct_state(accounting_cluster, failed["backend_id"]) == "FAILED|3:0"


def test_purged_completed_job_from_sacct(project, accounting_cluster):
    job = run_and_rewind(project, accounting_cluster, "echo started; sleep 1", "COMPLETED")
    accounting_cluster.script("purge-jobs.sh")
    assert accounting_cluster.scontrol_job(job["backend_id"]).returncode != 0
    assert show(project, job["id"])["state"] == "running"

    report = check_report(project, "--repair")

    drifts = drifts_of(report, job["id"])
    assert [drift["kind"] for drift in drifts] == ["process_gone"], report
    assert drifts[0]["repaired"] is True
    assert f"Slurm job {job['backend_id']} ended as COMPLETED" in drifts[0]["detail"]
    show_output = show(project, job["id"])
    assert show_output["state"] == "succeeded"
    assert show_output["exit_code"] == 0
    assert show_output["reason"] == "Slurm COMPLETED"
    text = project.wait_footer(job["id"])
    assert "[bgrun] state: succeeded (Slurm COMPLETED)\n" in text
    assert "[bgrun] exit: exit code 0\n" in text
    assert text.count("[bgrun] state: ") == 1
    again = check_report(project)
    assert again["returncode"] == 0, again


def test_purged_failed_command_from_sacct(project, accounting_cluster):
    job = run_and_rewind(project, accounting_cluster, "echo started; sleep 1; exit 3", "FAILED")
    accounting_cluster.script("purge-jobs.sh")
    assert accounting_cluster.scontrol_job(job["backend_id"]).returncode != 0

    report = check_report(project, "--repair")

    drifts = drifts_of(report, job["id"])
    assert [drift["kind"] for drift in drifts] == ["process_gone"], report
    assert f"Slurm job {job['backend_id']} ended as FAILED" in drifts[0]["detail"]
    show_output = show(project, job["id"])
    assert show_output["state"] == "failed"
    assert show_output["exit_code"] == 3
    assert show_output["signal"] is None
    assert show_output["reason"].startswith("Slurm FAILED")
    text = project.wait_footer(job["id"])
    assert "[bgrun] state: failed (Slurm FAILED" in text
    assert "[bgrun] exit: exit code 3\n" in text
    again = check_report(project)
    assert again["returncode"] == 0, again


def test_purged_job_without_footer_not_lost(project, accounting_cluster):
    job = project.submit("sleep 300")
    project.wait_state(job["id"], "running")
    kill_step(project, job["id"])
    wait_for(lambda: sacct_state(accounting_cluster, job["backend_id"]) == "FAILED|0:9",
             message=f"sacct to report Slurm job {job['backend_id']} as FAILED by SIGKILL")
    accounting_cluster.script("purge-jobs.sh")
    assert accounting_cluster.scontrol_job(job["backend_id"]).returncode != 0

    report = check_report(project, "--repair")
    drifts = drifts_of(report, job["id"])
    assert [drift["kind"] for drift in drifts] == ["process_gone"], report
    assert "ended as FAILED" in drifts[0]["detail"]
    assert "has no record" not in drifts[0]["detail"]
    show_output = show(project, job["id"])
    assert show_output["state"] == "failed"
    assert show_output["reason"] == "Slurm FAILED"
    assert show_output["signal"] == 9
    text = project.wait_footer(job["id"])
    assert "[bgrun] state: failed (Slurm FAILED)\n" in text
    assert "[bgrun] exit: killed by SIGKILL\n" in text
    assert "[bgrun] leftover processes: not checked (Slurm job)\n" in text
    again = check_report(project)
    assert again["returncode"] == 0, again


def stop_slurmdbd(cluster: Cluster) -> None:
    """SIGTERM the slurmdbd that up.sh started for this cluster, by its recorded PID, and wait for it."""
    import psutil

    pid = int((cluster.state_dir / "run" / "slurmdbd.pid").read_text())
    process = psutil.Process(pid)
    assert process.name() == "slurmdbd"
    process.terminate()
    process.wait(timeout=60)


def test_slurmdbd_down_leaves_job_active(project, accounting_cluster):
    job = project.submit("sleep 300")
    project.wait_state(job["id"], "running")
    kill_step(project, job["id"])
    wait_for(lambda: sacct_state(accounting_cluster, job["backend_id"]) == "FAILED|0:9",
             message=f"sacct to report Slurm job {job['backend_id']} as FAILED by SIGKILL")
    accounting_cluster.script("purge-jobs.sh")
    stop_slurmdbd(accounting_cluster)
    try:
        report = check_report(project, "--repair")
        assert drifts_of(report, job["id"]) == [], report
        unchecked = [item for item in report["unchecked"] if item["job"] == job["id"]]
        assert len(unchecked) == 1, report
        assert "sacct" in unchecked[0]["detail"]
        assert show(project, job["id"])["state"] == "running"
        assert "\n[bgrun] state: " not in project.log_text(job["id"])
    finally:
        env = {**os.environ, "CI_SLURM_ACCOUNTING": "1"}
        subprocess.run([str(SCRIPTS / "up.sh"), str(accounting_cluster.state_dir)], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=SCRIPT_TIMEOUT)

    report = check_report(project, "--repair")
    drifts = drifts_of(report, job["id"])
    assert [drift["kind"] for drift in drifts] == ["process_gone"], report
    assert show(project, job["id"])["state"] == "failed"
