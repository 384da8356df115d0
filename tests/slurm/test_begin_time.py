"""Jobs submitted with `--begin` start when due, not at slurmctld's next scheduling pass.

Without a release, slurmctld 22.05 starts such a job only at its next scheduling pass, up to a
minute after its begin time (sched_interval 60 s, bf_interval 30 s by default). The bounds below
are far above the release's usual second and far below that minute.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from ..server.conftest import LspSession

LATENESS_BOUND_SECONDS = 20.0


def lateness(started_at: str, scheduled_for: str) -> float:
    return (datetime.fromisoformat(started_at) - datetime.fromisoformat(scheduled_for)).total_seconds()


def test_long_delay_released_when_due(project):
    job = project.submit("echo released", options=("--delay", "31"))
    assert job["backend_id"].isdigit()

    done = project.wait_state(job["id"], "succeeded", timeout=180)

    assert 0 <= lateness(done["started_at"], done["scheduled_for"]) < LATENESS_BOUND_SECONDS
    assert "\nreleased\n" in project.wait_footer(job["id"])


@pytest.mark.asyncio
async def test_server_releases_retry(project):
    session = LspSession(project, {"backend": "slurm", "retries": 1, "backoff": 2})
    await session.start()
    try:
        job = await session.request("bgrun/run", {"command": "exit 3", "delay": 0})
        waiting = await session.wait_for(
            lambda: next((change for change in session.changes_of(job["id"]) if change.get("attempt") == 2), None),
            f"job {job['id']} to schedule its second attempt", 120)
        retry_due = waiting["scheduled_for"]

        done = await session.wait_state(job["id"], "failed", timeout=180)

        second = done["attempts"][1]
        assert 0 <= lateness(second["started_at"], retry_due) < LATENESS_BOUND_SECONDS
        assert done["reason"] == "all 2 attempts failed"
    finally:
        await session.close()


def test_delay_of_30_uses_begin(project, cluster):
    job = project.submit("echo later", options=("--delay", "30"))

    assert job["backend_id"].isdigit()
    assert "Reason=BeginTime" in cluster.scontrol_job(job["backend_id"]).stdout
