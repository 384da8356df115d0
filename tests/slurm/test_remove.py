"""`bgrun remove` of a Slurm job against the real test cluster (see conftest.py)."""

from __future__ import annotations


def test_remove_deletes_batch_files(project):
    job = project.submit("echo removable")
    project.wait_state(job["id"], "succeeded")
    project.wait_footer(job["id"])
    folder = project.log_root / ".bgrun" / "slurm"
    assert sorted(path.name for path in folder.glob(f"{job['id']}.*")) == [f"{job['id']}.json", f"{job['id']}.sh"]

    result = project.run("remove", job["id"])

    assert result.returncode == 0, result.stderr
    assert list(folder.glob(f"{job['id']}.*")) == []
    assert not (project.log_root / ".bgrun" / "jobs" / f"{job['id']}.json").exists()
