"""The bgrun language server: workspace state, settings, notifications and the stdio main loop.

The server owns no job. Supervisors are detached from it, so a server that exits or is killed
leaves every job running, and the next server reads them back from the store.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from .. import __version__, config, schema
from ..errors import BgrunError
from .checks import CheckRunner, CheckScheduler
from .connection import Connection
from .converter import make_protocol_converter
from .errors import invalid_field
from .folders import Folder, Folders, editor_settings, uri_to_path
from .operations import Stores
from .protocol import BgrunProtocol
from .watch import JobWatcher

log = logging.getLogger("bgrun.server")

JOB_CHANGED = "bgrun/jobChanged"
JOB_REMOVED = "bgrun/jobRemoved"
DRIFT_FOUND = "bgrun/driftFound"
SETTINGS_SECTION = "bgrun"
# Engine calls that may run at once. A stop occupies its thread for up to its grace period.
ENGINE_WORKERS = 16
CONFIGURATION_TIMEOUT_SECONDS = 10.0


class BgrunServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("bgrun", __version__, text_document_sync_kind=types.TextDocumentSyncKind.None_,
                         protocol_cls=BgrunProtocol, converter_factory=make_protocol_converter)
        self.engine_pool = ThreadPoolExecutor(ENGINE_WORKERS, thread_name_prefix="bgrun-engine")
        # bgrun/run replies before the job's supervisor starts. Supervisor starts get their own
        # pool, which stop_background_work does not cancel, so that a start still pending at
        # `shutdown`, `exit` or a closed stdin completes before the process exits.
        self.supervisor_pool = ThreadPoolExecutor(4, thread_name_prefix="bgrun-supervisor-start")
        self.folders = Folders()
        self.stores = Stores()
        self.watcher = JobWatcher(self._post_change, self._post_removed)
        self.check_runner = CheckRunner()
        self.checks: CheckScheduler | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connection: Connection | None = None
        self.initialized = False
        self.shutdown_requested = False
        self.pushed_settings: Any = None
        self.ready: asyncio.Task | None = None
        self.reloading: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()
        self.settings_lock: asyncio.Lock | None = None
        self.default_check_interval = config.Settings().check_interval

    # -- running on stdio -----------------------------------------------------------------------

    async def serve(self, in_fd: int, out_stream) -> int:
        self.loop = asyncio.get_running_loop()
        self.settings_lock = asyncio.Lock()
        self.connection = Connection(self.protocol, self.loop, in_fd, out_stream, lambda: self.shutdown_requested)
        self.connection.start()
        try:
            return await self.connection.finished
        finally:
            self.stop_background_work()

    def stop_background_work(self) -> None:
        self.watcher.stop()
        for task in list(self.tasks):
            task.cancel()
        self.engine_pool.shutdown(wait=False, cancel_futures=True)
        self.supervisor_pool.shutdown(wait=False, cancel_futures=False)

    def start_supervisor(self, start: Callable[[], None]) -> None:
        """Run a job's supervisor start on the supervisor pool, or on this thread once the pool is shut down."""
        try:
            self.supervisor_pool.submit(start)
        except RuntimeError:
            start()

    def spawn_task(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed: %r", task.exception(), exc_info=task.exception())

    async def in_pool(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking engine call on the engine's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(
            self.engine_pool, functools.partial(function, *args, **kwargs))

    # -- settings and log roots -----------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Load the settings and start watching, once, then wait for the latest settings reload."""
        if self.ready is None:
            self.ready = self.spawn_task(self._start())
        await asyncio.shield(self.ready)
        if self.reloading is not None and not self.reloading.done():
            # asyncio.wait does not raise the reload's error, because a failed reload has logged it
            # and kept the old settings. It also leaves the reload running when this request is cancelled.
            await asyncio.wait([self.reloading])

    def schedule_reload(self) -> None:
        """Start reading the settings again. Requests handled after this call wait for the result.

        The handlers of didChangeConfiguration and didChangeWorkspaceFolders call this before their
        first await, so the request that follows either notification uses the new settings.
        """
        if self.ready is None:
            return
        self.reloading = self.spawn_task(self._reload_after_start(self.ready))

    async def _reload_after_start(self, ready: asyncio.Task) -> None:
        await asyncio.shield(ready)
        await self.reload_settings()

    async def _start(self) -> None:
        self.watcher.start()
        self.checks = CheckScheduler(self.check_runner, self.engine_pool, self._drift_found)
        await self.reload_settings()
        self.spawn_task(self.checks.run_forever())

    def _current_folders(self) -> list[Folder]:
        workspace = self.workspace
        folders = []
        for folder in workspace.folders.values():
            path = uri_to_path(folder.uri)
            if path is None:
                log.warning("ignored workspace folder %s: only file: URIs are supported", folder.uri)
                continue
            folders.append(Folder(folder.uri, path))
        root_path = uri_to_path(workspace.root_uri) if workspace.root_uri else None
        if not folders and root_path is not None:
            folders.append(Folder(workspace.root_uri, root_path))
        if not folders:
            folders.append(Folder(from_fs_path(os.getcwd()) or "", Path.cwd()))
        return folders

    def _supports_configuration(self) -> bool:
        client = getattr(self.protocol, "client_capabilities", None)
        return bool(client and client.workspace and client.workspace.configuration)

    async def _fetch_settings(self, folders: list[Folder]) -> list[Any]:
        if not self._supports_configuration():
            return [self.pushed_settings for _ in folders]
        items = [types.ConfigurationItem(scope_uri=folder.uri or None, section=SETTINGS_SECTION) for folder in folders]
        try:
            values = await asyncio.wait_for(
                self.workspace_configuration_async(types.ConfigurationParams(items=items)),
                CONFIGURATION_TIMEOUT_SECONDS)
        except Exception as error:
            log.warning("workspace/configuration failed (%s); using the defaults", error)
            return [None for _ in folders]
        values = list(values) if isinstance(values, (list, tuple)) else []
        return (values + [None] * len(folders))[:len(folders)]

    async def reload_settings(self) -> None:
        """Read each folder's settings, then watch and check each folder's log root."""
        assert self.settings_lock is not None
        async with self.settings_lock:
            await self._reload_settings()

    async def _reload_settings(self) -> None:
        folders = self._current_folders()
        for folder, raw in zip(folders, await self._fetch_settings(folders)):
            folder.editor = editor_settings(raw)
        self.folders.replace(folders)
        intervals: dict[str, float] = {}
        for folder in folders:
            try:
                settings = await self.in_pool(config.resolve_settings, folder.path, editor=folder.editor,
                                              workspace=str(folder.path))
            except BgrunError as error:
                log.warning("settings of folder %s are invalid: %s", folder.path, error)
                continue
            intervals.setdefault(settings.log_root, settings.check_interval)
        if intervals:
            self.default_check_interval = next(iter(intervals.values()))
        for root in intervals:
            await self.watch_root(root)
        log.info("settings loaded for %d folder(s); log roots: %s", len(folders), ", ".join(intervals) or "none")
        if self.checks is not None:
            self.checks.update(intervals)

    async def watch_root(self, root: str) -> None:
        """Watch a log root, and check it as the folders' log roots are checked."""
        await asyncio.wrap_future(self.watcher.add_root(root))
        if self.checks is not None and root not in self.checks.intervals:
            self.checks.update({root: self.default_check_interval})

    def known_root(self, text: str) -> str:
        """Return the watched log root that `text` names, or raise InvalidParams."""
        roots = self.watcher.watched_roots()
        if text in roots:
            return text
        try:
            resolved = str(Path(os.path.expanduser(text)).resolve())
        except (OSError, RuntimeError):
            resolved = None
        if resolved in roots:
            return resolved
        raise invalid_field("params.logRoot", f"is not a log root this server watches; watched: {', '.join(roots) or 'none'}")

    # -- notifications --------------------------------------------------------------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Hand a report from a watcher thread to the event loop."""
        if self.loop is None:
            return
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass

    def _post_change(self, root: str, job: dict[str, Any], previous: str | None, progress: float | None) -> None:
        self._post(self._job_changed, root, job, previous, progress)

    def _post_removed(self, root: str, job_id: str) -> None:
        self._post(self._job_removed, root, job_id)

    def _can_notify(self) -> bool:
        return not self.shutdown_requested and self.connection is not None and not self.connection.finished.done()

    def _job_changed(self, root: str, job: dict[str, Any], previous: str | None, progress: float | None) -> None:
        if job.get("state") != previous:
            log.info("job %s under %s: %s", job.get("id"), root,
                     f"{previous} -> {job.get('state')}" if previous else f"{job.get('state')} (new)")
        if self._can_notify():
            self.protocol.notify(JOB_CHANGED, self.with_live_fields(root, job, progress))

    def _job_removed(self, root: str, job_id: str) -> None:
        log.info("job %s under %s: removed", job_id, root)
        if self._can_notify():
            self.protocol.notify(JOB_REMOVED, {"id": job_id, "logRoot": root})

    def _drift_found(self, root: str, report: dict[str, Any]) -> None:
        if self._can_notify():
            self.protocol.notify(DRIFT_FOUND, {"logRoot": root, "report": report})

    def with_live_fields(self, root: str, job: dict[str, Any], progress: float | None = None) -> dict[str, Any]:
        """Return the job with what the server reads besides its record.

        That is the progress from the log of a running job, and Slurm's pending reason of a job
        that waits in the Slurm queue (`queue_reason`).
        """
        if job.get("state") == schema.SCHEDULED and job.get("backend") == "slurm":
            reason = self.watcher.queue_reason_of(root, str(job.get("id")))
            return job if reason is None else dict(job, queue_reason=reason)
        if job.get("state") != schema.RUNNING:
            return job
        value = progress if progress is not None else self.watcher.progress_of(root, str(job.get("id")))
        return job if value is None else dict(job, progress=value)


def serve_stdio() -> int:
    """Serve on stdin and stdout, and return the exit code: 0 after shutdown and exit, else 1."""
    in_fd = os.dup(0)
    out_stream = os.fdopen(os.dup(1), "wb")
    # Keep the protocol streams private: jobs, hooks and stray prints get /dev/null and stderr.
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.close(null_fd)
    os.dup2(2, 1)
    server = BgrunServer()
    from .handlers import register

    register(server)
    log.info("bgrun language server %s started (process %d)", __version__, os.getpid())
    code = 1
    try:
        code = asyncio.run(server.serve(in_fd, out_stream))
        return code
    except KeyboardInterrupt:
        log.info("interrupted; exiting without touching any job")
        code = 130
        return code
    finally:
        log.info("bgrun language server stopped (exit code %d)", code)
        sys.stderr.flush()
