"""The language server with Slurm jobs: a job waiting in the Slurm queue carries Slurm's reason."""

from __future__ import annotations

import json
import subprocess

import pytest

from bgrun.backends import slurm
from bgrun.errors import BgrunError
from bgrun.backends.slurm import is_queued_in_slurm, parse_squeue, read_pending_reasons

from ..server.conftest import LspSession

SLURM_WAIT = 120.0


def test_parse_squeue_keeps_pending_reasons():
    text = "11|PENDING|Resources\n12|RUNNING|None\n13|PENDING|None\n14|PENDING|ReqNodeNotAvail, UnavailableNodes:n1\n"

    reasons = parse_squeue(text)

    assert reasons == {"11": "Resources", "14": "ReqNodeNotAvail, UnavailableNodes:n1"}


def test_queued_in_slurm_needs_backend_id():
    assert is_queued_in_slurm({"backend": "slurm", "state": "scheduled", "backend_id": "5"})
    assert not is_queued_in_slurm({"backend": "slurm", "state": "scheduled", "backend_id": None})
    assert not is_queued_in_slurm({"backend": "slurm", "state": "running", "backend_id": "5"})
    assert not is_queued_in_slurm({"backend": "local", "state": "scheduled", "backend_id": "5"})


def test_pending_reasons_missing_config(tmp_path):
    with pytest.raises(BgrunError, match="SLURM_CONF"):
        read_pending_reasons(["1"], str(tmp_path / "missing.conf"))


def test_pending_reasons_of_unknown_ids(cluster):
    assert read_pending_reasons(["999999"], str(cluster.slurm_conf)) == {}


@pytest.mark.asyncio
async def test_held_job_carries_queue_reason(project, cluster):
    session = LspSession(project, {"backend": "slurm", "slurmOptions": ["--hold"]})
    await session.start()
    try:
        job = await session.request("bgrun/run", {"command": "echo from-slurm", "delay": 0})
        job_id = job["id"]

        held_job = await session.wait_for(
            lambda: next((change for change in session.changes_of(job_id) if change.get("queue_reason")), None),
            f"a notification of job {job_id} with Slurm's pending reason", SLURM_WAIT)
        assert held_job["state"] == "scheduled"
        assert held_job["queue_reason"] == "JobHeldUser"
        assert held_job["backend_id"]
        listed = await session.request("bgrun/get", {"id": job_id})
        assert listed["queue_reason"] == "JobHeldUser"
        record = project.job(job_id)
        assert "queue_reason" not in record

        subprocess.run(["scontrol", "release", held_job["backend_id"]], env=cluster.env, check=True, timeout=30)
        done = await session.wait_state(job_id, "succeeded", "failed", "cancelled", "lost", timeout=SLURM_WAIT)
        assert done["state"] == "succeeded"
        assert "queue_reason" not in done
        assert "from-slurm" in project.log_text(job_id)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_queue_reason_absent_when_unreachable(project, cluster, tmp_path):
    """A queued job whose cluster stops responding keeps its state and loses only its reason."""
    session = LspSession(project, {"backend": "slurm", "slurmOptions": ["--hold"]})
    await session.start()
    try:
        job = await session.request("bgrun/run", {"command": "true", "delay": 0})
        job_id = job["id"]
        await session.wait_for(
            lambda: any(change.get("queue_reason") for change in session.changes_of(job_id)),
            f"Slurm's pending reason of job {job_id}", SLURM_WAIT)

        # Point the job's saved submission at a config that names no running controller.
        broken = tmp_path / "elsewhere.conf"
        broken.write_text(cluster.slurm_conf.read_text().replace("SlurmctldPort=", "SlurmctldPort=1"))
        store = project.store()
        try:
            saved = slurm.read_submission(store, job_id)
            saved["slurm_conf"] = str(broken)
            slurm.sidecar_path(store, job_id, ".json").write_text(json.dumps(saved))
        finally:
            store.close()

        await session.wait_for(
            lambda: (changes := session.changes_of(job_id)) and "queue_reason" not in changes[-1],
            f"a notification of job {job_id} without its old pending reason", SLURM_WAIT)
        listed = await session.request("bgrun/list", {})
        assert [item["state"] for item in listed if item["id"] == job_id] == ["scheduled"]
        assert await session.request("bgrun/get", {"id": job_id})
    finally:
        await session.close()
