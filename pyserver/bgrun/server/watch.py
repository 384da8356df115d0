"""Noticing every change of every job record under the watched log roots, whoever made it.

Each log root's `.bgrun/jobs/` folder is watched with watchdog (inotify on Linux). The store
writes a record to a temporary file and renames it over `<id>.json`, so the rename is the event
that matters. A poll every POLL_SECONDS catches what the watch missed. It stats the folder and
rescans it only when the folder changed (or changed too recently for its mtime to be trusted),
and it rescans every folder in full every FULL_SCAN_POLLS polls. job_index.py decides what
changed.

The same thread reads the progress of running jobs every PROGRESS_SECONDS (progress.py). A second
thread reads Slurm's pending reason of queued Slurm jobs (slurm_queue.py).
Callbacks run on the watcher's threads under the root's lock, so they must only hand the job
over (for example with loop.call_soon_threadsafe), which keeps each job's reports in order.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Callable

from watchdog.events import (DirCreatedEvent, DirMovedEvent, FileClosedEvent, FileCreatedEvent,
                             FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileSystemEventHandler)
from watchdog.observers import Observer

from ..store import STATE_DIR
from .job_index import RECORD_NAME, ChangeCallback, JobIndex, RemovedCallback
from .slurm_queue import QueuePoller

log = logging.getLogger("bgrun.server.watch")

POLL_SECONDS = 2.0
PROGRESS_SECONDS = 0.5
FULL_SCAN_POLLS = 15
# A folder mtime this recent may hide a second change within the filesystem's timestamp step.
RECENT_SECONDS = 2.0
WATCHED_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent, FileClosedEvent]
FOLDER_EVENTS = [DirCreatedEvent, DirMovedEvent]


@dataclass
class RootState:
    """One watched log root: its job index, and the watches and poll state of its folder."""

    root: str
    jobs_dir: Path
    index: JobIndex
    folder_signature: tuple[int, int] | None = None
    polls_since_full_scan: int = 0
    watch: Any = None
    watch_failed: bool = False
    creation_watch: Any = None
    creation_handler: Any = None
    creation_folder: Path | None = None


class _RecordEvents(FileSystemEventHandler):
    def __init__(self, watcher: JobWatcher, state: RootState):
        self.watcher = watcher
        self.state = state

    def on_any_event(self, event) -> None:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            match = RECORD_NAME.match(os.path.basename(os.fsdecode(path))) if path else None
            if match:
                self.watcher.refresh(self.state, match.group(1))


class _FolderEvents(FileSystemEventHandler):
    """Waits for `.bgrun/jobs` to appear under a log root that has no store yet."""

    def __init__(self, watcher: JobWatcher, root: str):
        self.watcher = watcher
        self.root = root

    def on_any_event(self, event) -> None:
        self.watcher.watch_now(self.root)


class JobWatcher:
    """Watches log roots and reports changed and removed jobs through two callbacks."""

    def __init__(self, on_change: ChangeCallback, on_removed: RemovedCallback):
        self.on_change = on_change
        self.on_removed = on_removed
        self.roots: dict[str, RootState] = {}
        self.pending: SimpleQueue[tuple[str, Future, bool]] = SimpleQueue()
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.observer = Observer()
        self.thread = threading.Thread(target=self._run, name="bgrun-watch", daemon=True)
        self.queue_poller = QueuePoller(self._queues)

    def start(self) -> None:
        self.observer.start()
        self.thread.start()
        self.queue_poller.start()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.observer.stop()
        self.queue_poller.stop()

    def add_root(self, root: str) -> Future:
        """Start watching `root`. The future completes once its current jobs are read."""
        future: Future = Future()
        if root in self.roots:
            future.set_result(None)
        else:
            self.pending.put((root, future, False))
            self.wake.set()
        return future

    def watch_now(self, root: str) -> Future:
        """Schedule the watch of `root` now, without waiting for the next poll, if its folder exists."""
        future: Future = Future()
        self.pending.put((root, future, True))
        self.wake.set()
        return future

    def watched_roots(self) -> list[str]:
        return list(self.roots)

    def progress_of(self, root: str, job_id: str) -> float | None:
        state = self.roots.get(root)
        return state.index.progress_of(str(job_id)) if state else None

    def queue_reason_of(self, root: str, job_id: str) -> str | None:
        state = self.roots.get(root)
        return state.index.queue_reason_of(str(job_id)) if state else None

    def _queues(self) -> list:
        """Return (lock, queue reasons, report) for each watched root, for the Slurm queue poller."""
        return [(state.index.lock, state.index.queue, self._reporter(state.root)) for state in self.roots.values()]

    def _reporter(self, root: str) -> Callable[[dict], None]:
        return lambda job: self.on_change(root, job, job.get("state"), None)

    def refresh(self, state: RootState, job_id: str) -> None:
        try:
            with state.index.lock:
                state.index.refresh(job_id, report=True)
        except Exception:
            log.exception("failed to read job %s under %s", job_id, state.root)

    # -- the watcher thread ---------------------------------------------------------------------

    def _run(self) -> None:
        next_poll = next_progress = 0.0
        while not self.stopped.is_set():
            self._safely(self._add_pending_roots)
            now = time.monotonic()
            if now >= next_progress:
                self._safely(self._progress_tick)
                next_progress = now + PROGRESS_SECONDS
            if now >= next_poll:
                self._safely(self._poll)
                next_poll = now + POLL_SECONDS
            self.wake.wait(max(0.0, min(next_poll, next_progress) - time.monotonic()))
            self.wake.clear()

    @staticmethod
    def _safely(step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            log.exception("watcher step %s failed; continuing", step.__name__)

    def _add_pending_roots(self) -> None:
        while True:
            try:
                root, future, watch_now = self.pending.get_nowait()
            except Empty:
                return
            try:
                if root not in self.roots:
                    self._add_root_now(root)
                state = self.roots[root]
                if watch_now and self._ensure_watch(state):
                    self._scan(state)
                future.set_result(None)
            except Exception as error:
                future.set_exception(error)

    def _add_root_now(self, root: str) -> None:
        jobs_dir = Path(root) / STATE_DIR / "jobs"
        state = RootState(root, jobs_dir, JobIndex(root, jobs_dir, self.on_change, self.on_removed))
        self._scan(state, report=False)
        self.roots = {**self.roots, root: state}
        log.info("watching log root %s (%d jobs)", root, len(state.index.revisions))
        if self._ensure_watch(state):
            self._scan(state)

    @staticmethod
    def _scan(state: RootState, report: bool = True) -> None:
        with state.index.lock:
            state.index.scan(report)

    def _ensure_watch(self, state: RootState) -> bool:
        """Schedule the watch once `.bgrun/jobs` exists, and return True when it was newly scheduled.

        Until the folder exists, its nearest existing parent (up to the log root's parent) is
        watched for new folders, so the first job's record is seen at once, not at the next poll.
        """
        if state.watch is not None or state.watch_failed:
            return False
        if not state.jobs_dir.is_dir():
            self._watch_for_creation(state)
            if not state.jobs_dir.is_dir():
                return False
        try:
            state.watch = self._schedule(_RecordEvents(self, state), state.jobs_dir, WATCHED_EVENTS)
        except OSError as error:
            state.watch_failed = True
            log.warning("cannot watch %s (%s); polling it every %g s instead", state.jobs_dir, error, POLL_SECONDS)
            return False
        self._stop_creation_watch(state)
        return True

    def _schedule(self, handler: FileSystemEventHandler, folder: Path, events: list) -> Any:
        """Watch `folder`, not its subfolders, for `events`.

        A watchdog release without `event_filter` delivers every event, and the handlers then
        filter by path themselves.
        """
        try:
            return self.observer.schedule(handler, str(folder), recursive=False, event_filter=events)
        except TypeError:
            return self.observer.schedule(handler, str(folder), recursive=False)

    def _watch_for_creation(self, state: RootState) -> None:
        root = Path(state.root)
        folder = next((path for path in (state.jobs_dir.parent, root, root.parent) if path.is_dir()), None)
        if folder is None or folder == state.creation_folder:
            return
        self._stop_creation_watch(state)
        handler = _FolderEvents(self, state.root)
        try:
            state.creation_watch = self._schedule(handler, folder, FOLDER_EVENTS)
        except OSError as error:
            log.debug("cannot watch %s for the creation of %s: %s", folder, state.jobs_dir, error)
            return
        state.creation_handler = handler
        state.creation_folder = folder

    def _stop_creation_watch(self, state: RootState) -> None:
        """Remove only this root's handler: another root may share the same watched folder."""
        if state.creation_watch is not None:
            try:
                self.observer.remove_handler_for_watch(state.creation_handler, state.creation_watch)
            except (KeyError, ValueError, OSError):
                pass
        state.creation_watch = state.creation_handler = state.creation_folder = None

    def _poll(self) -> None:
        for state in list(self.roots.values()):
            try:
                folder = os.stat(state.jobs_dir)
            except OSError:
                self._forget_watch(state)
                if state.index.revisions:
                    self._scan(state)
                continue
            newly_watched = self._ensure_watch(state)
            signature = (folder.st_ino, folder.st_mtime_ns)
            state.polls_since_full_scan += 1
            recent = time.time() - folder.st_mtime < RECENT_SECONDS
            if (signature == state.folder_signature and not recent and not newly_watched
                    and state.polls_since_full_scan < FULL_SCAN_POLLS):
                continue
            self._scan(state)
            state.folder_signature = signature
            state.polls_since_full_scan = 0

    def _forget_watch(self, state: RootState) -> None:
        if state.watch is not None:
            try:
                self.observer.unschedule(state.watch)
            except (KeyError, OSError):
                pass
            state.watch = None
            state.folder_signature = None

    def _progress_tick(self) -> None:
        for state in list(self.roots.values()):
            index = state.index
            if index.running or index.missing:
                with index.lock:
                    index.check_progress()
