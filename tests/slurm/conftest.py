"""A real single-node Slurm 22.05 cluster for the Slurm backend tests, started by `.ci/slurm/up.sh`.

The cluster is started once per session in a new folder under /tmp (munged rejects a socket whose
parent folders are not executable by all users, which rules out pytest's 0700 temporary folders)
and stopped by `down.sh` at the end. The tests are skipped, with up.sh's output as the reason, only
when the cluster cannot be installed or started, for example when not running as root.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import Project

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPTS = REPOSITORY / ".ci" / "slurm"
SCRIPT_TIMEOUT = 300


@dataclass
class Cluster:
    """The running test cluster: its state folder and the SLURM_CONF every client call needs."""

    state_dir: Path
    slurm_conf: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.slurm_conf)}

    def script(self, name: str) -> None:
        subprocess.run([str(SCRIPTS / name), str(self.state_dir)], check=True, stdout=subprocess.DEVNULL,
                       timeout=SCRIPT_TIMEOUT)

    def scontrol_job(self, slurm_id: str) -> subprocess.CompletedProcess:
        return subprocess.run(["scontrol", "show", "job", "-o", slurm_id], env=self.env, capture_output=True,
                              text=True, timeout=30)


@pytest.fixture(scope="session")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("the Slurm test cluster needs root: .ci/slurm/up.sh installs packages and starts slurmctld as root")
    state = Path(tempfile.mkdtemp(prefix="slurm-ci.", dir="/tmp"))
    state.chmod(0o755)
    try:
        result = subprocess.run([str(SCRIPTS / "up.sh"), str(state)], capture_output=True, text=True,
                                timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        subprocess.run([str(SCRIPTS / "down.sh"), str(state)], timeout=SCRIPT_TIMEOUT)
        pytest.skip(f".ci/slurm/up.sh did not finish within {SCRIPT_TIMEOUT} s")
    if result.returncode != 0:
        subprocess.run([str(SCRIPTS / "down.sh"), str(state)], timeout=SCRIPT_TIMEOUT)
        pytest.skip(f"slurmctld could not be installed or started by .ci/slurm/up.sh: {result.stderr.strip()[-500:]}")
    yield Cluster(state, state / "slurm.conf")
    subprocess.run([str(SCRIPTS / "down.sh"), str(state)], check=True, timeout=SCRIPT_TIMEOUT)


@pytest.fixture
def project(tmp_path: Path, cluster: Cluster):
    """A scratch project whose `bgrun` runs use the slurm backend of the test cluster."""
    project = Project(tmp_path / "project")
    project.env["SLURM_CONF"] = str(cluster.slurm_conf)
    project.env["BGRUN_BACKEND"] = "slurm"
    yield project
    cancel_active_jobs(project, cluster)
    project.stop_leftover_jobs()


def cancel_active_jobs(project: Project, cluster: Cluster) -> None:
    """Cancel the Slurm jobs a test left active, so they do not hold the node's CPUs."""
    if not (project.log_root / ".bgrun").is_dir():
        return
    store = project.store()
    try:
        jobs = store.list(states=["scheduled", "running"])
    finally:
        store.close()
    slurm_ids = [job["backend_id"] for job in jobs if job.get("backend_id")]
    if slurm_ids:
        subprocess.run(["scancel", *slurm_ids], env=cluster.env, capture_output=True, timeout=30)
