"""A batch job that Slurm requeues, against the real cluster (see conftest.py).

This file runs before the other Slurm tests, on a cluster that `purge-jobs.sh` and
`restart-ctld.sh` have not yet reconfigured or restarted.
"""

from __future__ import annotations

import re
import subprocess

import pytest


@pytest.mark.slow
def test_requeue_counts_as_attempt(project, cluster):
    job = project.submit("echo run ${SLURM_RESTART_COUNT:-0}; sleep 5",
                         options=("--delay", "0", "--sbatch-option=--requeue"))
    project.wait_state(job["id"], "running")
    subprocess.run(["scontrol", "requeue", job["backend_id"]], env=cluster.env, check=True, timeout=30)
    # Slurm 22.05 moves a requeued job's begin time about 2 minutes ahead (3 minutes seen once).
    done = project.wait_state(job["id"], "succeeded", timeout=300)
    text = project.wait_footer(job["id"])
    assert [attempt["number"] for attempt in done["attempts"]] == [1, 2]
    # The shell may die of the SIGTERM itself or exit with 143 after its child did.
    assert re.search(r"^\[bgrun\] attempt 1 of 1 ended: requeued by Slurm \(restart 1\), "
                     r"(killed by SIGTERM|exit code 143)$", text, re.MULTILINE)
    assert "[bgrun] attempt 2 of 2 started: " in text
    assert "\nrun 0\n" in text
    assert "\nrun 1\n" in text
    assert text.count("[bgrun] state: ") == 1
