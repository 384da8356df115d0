"""The engine calls behind the bgrun/* requests. Each one blocks, so handlers run them in a thread pool.

Job ids are unique only within one log root, so a request that names a job by id alone is
resolved against every watched log root and is rejected when the id exists under several.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..engine import spawn
from ..engine.remove import remove_job
from ..engine.stop import stop_job
from ..errors import JobNotFound, UsageError
from ..store import STATE_DIR, Store
from .params import RunParams

log = logging.getLogger("bgrun.server.operations")

OLDEST = datetime.min.replace(tzinfo=timezone.utc)


class Stores:
    """One Store per log root, opened only where the store already exists."""

    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}

    def get(self, root: str) -> Store | None:
        store = self.stores.get(root)
        if store is None and (Path(root) / STATE_DIR).is_dir():
            store = self.stores[root] = Store(root, create=False)
        return store


def run_request(params: RunParams, cwd: str) -> spawn.RunRequest:
    """Return the engine request for bgrun/run and bgrun/preview, where None fields use the settings."""
    return spawn.RunRequest(
        command=params.command, argv=params.argv, cwd=cwd, category=params.category, name=params.name,
        delay=params.delay, retries=params.retries, env=dict(params.env or {}), env_file=params.env_file,
        environment=params.environment,
    )


def find_job(stores: Stores, roots: Sequence[str], job_id: str) -> tuple[str, dict[str, Any]]:
    """Return (log root, job) for an id found in `roots`, or raise when it is missing or ambiguous."""
    found = []
    for root in roots:
        store = stores.get(root)
        if store is None:
            continue
        try:
            found.append((root, store.get(job_id)))
        except JobNotFound:
            continue
    if not found:
        raise JobNotFound(f"no job {job_id} under the log roots this server watches "
                          f"({', '.join(roots) or 'none'}); bgrun/list shows the jobs")
    if len(found) > 1:
        raise UsageError(f"job id {job_id} exists under {len(found)} log roots "
                         f"({', '.join(root for root, _ in found)}); pass logRoot to choose one")
    return found[0]


def _created(job: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(job.get("created_at") or "")
    except (TypeError, ValueError):
        return OLDEST


def list_jobs(stores: Stores, roots: Iterable[str], states: Sequence[str] | None, category: str | None,
              limit: int | None) -> list[tuple[str, dict[str, Any]]]:
    """Return (log root, job) for the jobs of `roots`, newest first, at most `limit`."""
    found: list[tuple[str, dict[str, Any]]] = []
    for root in roots:
        store = stores.get(root)
        if store is not None:
            found.extend((root, job) for job in store.list(states=states, category=category, limit=limit))
    found.sort(key=lambda item: (_created(item[1]), _number(item[1].get("id"))), reverse=True)
    return found[:limit] if limit else found


def _number(job_id: Any) -> int:
    return int(job_id) if str(job_id).isdigit() else 0


def stop(stores: Stores, root: str, job_id: str, grace: float | None) -> dict[str, Any]:
    store = stores.get(root)
    if store is None:
        raise JobNotFound(f"no job {job_id} under log root {root}")
    return stop_job(store, job_id, grace=grace)


def remove(stores: Stores, root: str, job_id: str) -> dict[str, Any]:
    """Remove a finished job from both copies of the store, and its log when it is inside `root`."""
    store = stores.get(root)
    if store is None:
        raise JobNotFound(f"no job {job_id} under log root {root}")
    job, _ = remove_job(store, job_id)
    return job
