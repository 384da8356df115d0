"""`bgrun check` of a Slurm job whose controller does not respond, against the real test cluster."""

from __future__ import annotations

import json

from bgrun.backends import slurm


def point_job_at(project, job_id: str, slurm_conf: str) -> None:
    """Make the job's saved submission name another cluster config, as if its controller moved."""
    store = project.store()
    try:
        saved = slurm.read_submission(store, job_id)
        saved["slurm_conf"] = slurm_conf
        slurm.sidecar_path(store, job_id, ".json").write_text(json.dumps(saved))
    finally:
        store.close()


def write_silent_conf(cluster, folder) -> str:
    """Write the test cluster's config with a controller port where nothing listens; return its path."""
    silent = folder / "silent.conf"
    silent.write_text(cluster.slurm_conf.read_text().replace("SlurmctldPort=", "SlurmctldPort=1"))
    return str(silent)


def test_check_reports_unchecked_job(project, cluster, tmp_path):
    job = project.submit("sleep 300")
    project.wait_state(job["id"], "running")
    silent = write_silent_conf(cluster, tmp_path)
    point_job_at(project, job["id"], silent)

    result = project.run("check", "--repair", "--json")

    report = json.loads(result.stdout)
    assert result.returncode == 1, report
    assert report["consistent"] is True
    assert report["complete"] is False
    assert [item["job"] for item in report["unchecked"]] == [job["id"]]
    assert "not checked" in report["unchecked"][0]["detail"]
    assert silent in report["unchecked"][0]["detail"]
    assert report["drifts"] == []
    assert project.job(job["id"])["state"] == "running"

    text = project.run("check")
    assert text.returncode == 1
    assert f"  not checked: job {job['id']}: Slurm job {job['backend_id']} not checked" in text.stdout
    assert "result: no drift found, but 1 job(s) could not be checked" in text.stdout

    point_job_at(project, job["id"], str(cluster.slurm_conf))
    again = project.run("check", "--json")
    assert again.returncode == 0, again.stdout
    assert json.loads(again.stdout)["complete"] is True
