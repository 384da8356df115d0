"""`bgrun stop` of a Slurm job whose controller does not respond, against the real test cluster."""

from __future__ import annotations

from .test_check_unreachable import point_job_at, write_silent_conf


def test_failed_stop_leaves_job_running(project, cluster, tmp_path):
    # The stop fails only after the Slurm client's 15 s timeout, so the job outlives it.
    job = project.submit("sleep 40; echo survived")
    project.wait_state(job["id"], "running")
    point_job_at(project, job["id"], write_silent_conf(cluster, tmp_path))

    result = project.run("stop", job["id"])

    assert result.returncode != 0
    assert f"cannot stop job {job['id']}" in result.stderr
    assert "keeps running" in result.stderr
    assert "SLURM_CONF" in result.stderr
    assert "slurmctld" in result.stderr
    assert not (project.log_root / ".bgrun" / "cancel" / job["id"]).exists()
    done = project.wait_state(job["id"], "succeeded", timeout=120)
    assert done["exit_code"] == 0
    assert "\nsurvived\n" in project.wait_footer(job["id"])
