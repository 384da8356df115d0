"""The bgrun/* requests: each checks its params, then runs its engine calls on the thread pool.

docs/protocol.md documents every method, its params, its result and its errors.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .. import config
from ..engine import spawn
from ..errors import BgrunError
from ..store import STATE_DIR, Store
from . import operations
from .converter import structure_params
from .errors import SERVER_NOT_INITIALIZED, RequestFailed, from_engine_error, internal_error, invalid_field
from .lifecycle import register_lifecycle
from .params import CheckParams, JobParams, ListParams, RerunParams, RunParams, StopParams

if TYPE_CHECKING:
    from .server import BgrunServer

log = logging.getLogger("bgrun.server.requests")

Handler = Callable[["BgrunServer", Any], Awaitable[Any]]


def _describe_request(method: str, params: Any) -> str:
    job_id = getattr(params, "id", None)
    return f"{method} for job {job_id}" if job_id else method


async def call_handler(server: BgrunServer, method: str, params_class: type, body: Handler, raw: Any) -> Any:
    """Check the params, wait for the settings, run the handler and turn each failure into one error."""
    if not server.initialized:
        log.warning("%s rejected: the client has not sent 'initialize'", method)
        raise RequestFailed(SERVER_NOT_INITIALIZED, f"{method} rejected: send 'initialize' first")
    try:
        params = structure_params(raw, params_class)
    except RequestFailed as error:
        log.warning("%s rejected: %s", method, error.message)
        raise
    await server.ensure_ready()
    try:
        return await body(server, params)
    except RequestFailed as error:
        log.warning("%s rejected: %s", _describe_request(method, params), error.message)
        raise
    except BgrunError as error:
        failure = from_engine_error(error)
        log.warning("%s failed: %s", _describe_request(method, params), failure.message)
        raise failure from None
    except asyncio.CancelledError:
        raise
    except Exception as error:
        log.exception("%s failed with an internal error", _describe_request(method, params))
        raise internal_error(error) from None


def bgrun_request(server: BgrunServer, method: str, params_class: type) -> Callable[[Handler], Handler]:
    def decorator(body: Handler) -> Handler:
        async def handler(ls: BgrunServer, raw: Any) -> Any:
            return await call_handler(ls, method, params_class, body, raw)

        server.feature(method)(handler)
        return body
    return decorator


async def _locate(server: BgrunServer, job_id: str, log_root: str | None) -> tuple[str, dict[str, Any]]:
    roots = [server.known_root(log_root)] if log_root else server.watcher.watched_roots()
    return await server.in_pool(operations.find_job, server.stores, roots, job_id)


async def _submit(server: BgrunServer, request: spawn.RunRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Watch the job's log root before submitting, so that the job's first record is reported too."""
    try:
        settings = await server.in_pool(config.resolve_settings, request.cwd, overrides=request.overrides(), **context)
        await server.watch_root(settings.log_root)
        if not (Path(settings.log_root) / STATE_DIR / "jobs").is_dir():
            await server.in_pool(spawn.plan_job, request, **context)
            await server.in_pool(Store, settings.log_root)
            await asyncio.wrap_future(server.watcher.watch_now(settings.log_root))
    except (BgrunError, OSError):
        pass  # submit raises the same error, and records the rejection in logs/errors/
    # The supervisor starts on the supervisor pool after the reply, so the reply takes milliseconds,
    # not the tens of milliseconds a new interpreter needs. Its PID arrives with bgrun/jobChanged.
    return await server.in_pool(spawn.submit, request, run_later=server.start_supervisor, **context)


def register(server: BgrunServer) -> None:
    register_lifecycle(server)

    @bgrun_request(server, "bgrun/run", RunParams)
    async def run(ls: BgrunServer, params: RunParams) -> dict[str, Any]:
        cwd = ls.folders.resolve_cwd(params.cwd)
        return await _submit(ls, operations.run_request(params, cwd), ls.folders.context_for(cwd))

    @bgrun_request(server, "bgrun/preview", RunParams)
    async def preview(ls: BgrunServer, params: RunParams) -> dict[str, Any]:
        cwd = ls.folders.resolve_cwd(params.cwd)
        return await ls.in_pool(spawn.preview, operations.run_request(params, cwd), **ls.folders.context_for(cwd))

    @bgrun_request(server, "bgrun/list", ListParams)
    async def list_jobs(ls: BgrunServer, params: ListParams) -> list[dict[str, Any]]:
        roots = [ls.known_root(params.log_root)] if params.log_root else ls.watcher.watched_roots()
        folder = None
        if params.folder:
            folder = ls.folders.find(params.folder)
            if folder is None:
                known = ", ".join(item.uri for item in ls.folders.items)
                raise invalid_field("params.folder", f"is not a workspace folder of this server; folders: {known}")
        limit = None if folder else params.limit
        found = await ls.in_pool(operations.list_jobs, ls.stores, roots, params.states, params.category, limit)
        if folder is not None:
            found = [(root, job) for root, job in found if ls.folders.owner_of(job.get("cwd")) is folder]
            found = found[:params.limit] if params.limit else found
        return [ls.with_live_fields(root, job) for root, job in found]

    @bgrun_request(server, "bgrun/get", JobParams)
    async def get(ls: BgrunServer, params: JobParams) -> dict[str, Any]:
        root, job = await _locate(ls, params.id, params.log_root)
        return ls.with_live_fields(root, job)

    @bgrun_request(server, "bgrun/stop", StopParams)
    async def stop(ls: BgrunServer, params: StopParams) -> dict[str, Any]:
        root, _ = await _locate(ls, params.id, params.log_root)
        return await ls.in_pool(operations.stop, ls.stores, root, params.id, params.grace)

    @bgrun_request(server, "bgrun/rerun", RerunParams)
    async def rerun(ls: BgrunServer, params: RerunParams) -> dict[str, Any]:
        root, job = await _locate(ls, params.id, params.log_root)
        request = spawn.rerun_request(job)
        request.delay = params.delay
        request.log_root = request.log_root or root
        return await _submit(ls, request, ls.folders.context_for(job.get("cwd")))

    @bgrun_request(server, "bgrun/remove", JobParams)
    async def remove(ls: BgrunServer, params: JobParams) -> dict[str, Any]:
        root, _ = await _locate(ls, params.id, params.log_root)
        return await ls.in_pool(operations.remove, ls.stores, root, params.id)

    @bgrun_request(server, "bgrun/check", CheckParams)
    async def check(ls: BgrunServer, params: CheckParams) -> dict[str, Any]:
        roots = [ls.known_root(params.log_root)] if params.log_root else ls.watcher.watched_roots()
        reports = []
        for root in roots:
            if ls.stores.get(root) is None:
                continue
            report = await ls.in_pool(ls.check_runner.run, root, params.repair)
            reports.append({"logRoot": root, "consistent": report.consistent, "report": report.to_dict()})
        return {"consistent": all(item["consistent"] for item in reports), "reports": reports}
