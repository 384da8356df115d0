"""Removing a finished job: its row, its record file, its log and, for a Slurm job, its batch files.

The log is deleted only when its path is a `.log` file directly in a category folder of the job's
log root, so a record edited to point elsewhere can never make bgrun delete another file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .. import schema
from ..errors import UsageError
from ..store import Store

log = logging.getLogger("bgrun.remove")


def log_inside_root(log_root: Path, log_path: str | None) -> Path | None:
    """Return the log's resolved path when it lies in a category folder of `log_root`, else None."""
    if not isinstance(log_path, str) or not log_path or not os.path.isabs(log_path):
        return None
    path = Path(log_path)
    folder = path.parent.resolve()
    if folder.parent != log_root.resolve() or not path.name.endswith(".log"):
        return None
    return folder / path.name


def remove_job(store: Store, job_id: str) -> tuple[dict[str, Any], bool]:
    """Remove a finished job from both copies and delete its log; return it and whether the log went."""
    job = store.get(job_id)
    if job["state"] in schema.ACTIVE_STATES:
        raise UsageError(f"job {job['id']} is {job['state']}; stop it first with 'bgrun stop {job['id']}'")
    store.remove(job_id)
    log.info("job %s: removed", job_id)
    if job.get("backend") == "slurm":
        _remove_submission_files(store, job_id)
    path = log_inside_root(store.log_root, job.get("log_path"))
    if path is None:
        log.warning("job %s: left its log %s alone: it is not in a category folder of %s",
                    job_id, job.get("log_path"), store.log_root)
        return job, False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return job, False
    except OSError as error:
        log.warning("job %s: cannot delete its log %s: %s", job_id, path, error)
        return job, False
    return job, True


def _remove_submission_files(store: Store, job_id: str) -> None:
    """Delete the batch script and the saved sbatch settings of a removed Slurm job."""
    from ..backends.slurm import SUBMISSION_SUFFIXES, sidecar_path

    for suffix in SUBMISSION_SUFFIXES:
        try:
            os.unlink(sidecar_path(store, job_id, suffix))
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("job %s: cannot delete its Slurm file %s: %s", job_id, sidecar_path(store, job_id, suffix), error)
