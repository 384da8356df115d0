"""Consistency checks of each watched log root: at start, then every `checkInterval` minutes.

A check compares the job database, the record files, the logs and the processes, and with
repair=True fixes each drift it finds (bgrun.store.check). It runs on the engine's thread pool,
never twice at once on one log root. When a periodic check finds drift, `on_drift` receives
the log root and the report.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable

from ..errors import BgrunError
from ..store import STATE_DIR

log = logging.getLogger("bgrun.server.checks")

MAX_SLEEP_SECONDS = 30.0


def load_run_check() -> Callable[..., Any]:
    try:
        from ..store.check import run_check
    except ImportError as error:
        raise BgrunError(f"the consistency check is not available in this installation ({error}); "
                         f"reinstall bgrun") from None
    return run_check


class CheckRunner:
    """Runs checks, one at a time per log root."""

    def __init__(self) -> None:
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def run(self, root: str, repair: bool, periodic: bool = False) -> Any:
        """Run the check of `root` and return its report, after any check of it already running.

        A periodic check that finds nothing writes no report file, but one requested by a client does.
        """
        run_check = load_run_check()
        with self.guard:
            lock = self.locks.setdefault(root, threading.Lock())
        with lock:
            return run_check(Path(root), repair=repair, write_clean_report=not periodic)


class CheckScheduler:
    """Runs `run_check(root, repair=True)` on every log root when it is due."""

    def __init__(self, runner: CheckRunner, pool: Executor,
                 on_drift: Callable[[str, dict[str, Any]], None]):
        self.runner = runner
        self.pool = pool
        self.on_drift = on_drift
        self.intervals: dict[str, float] = {}
        self.last_run: dict[str, float] = {}
        self.changed = asyncio.Event()
        self.last_errors: dict[str, str] = {}

    def update(self, intervals: dict[str, float]) -> None:
        """Set each log root's interval in minutes, where 0 leaves only the check at start.

        A root not checked yet is due at once. Otherwise the next check is due one new interval
        after the last one.
        """
        for root, minutes in intervals.items():
            self.intervals[root] = minutes
        self.changed.set()

    def _next_due(self, root: str) -> float:
        last = self.last_run.get(root)
        if last is None:
            return time.monotonic()
        minutes = self.intervals.get(root, 0)
        return last + minutes * 60 if minutes > 0 else float("inf")

    async def run_forever(self) -> None:
        while True:
            self.changed.clear()
            for root in list(self.intervals):
                if self._next_due(root) <= time.monotonic():
                    self.last_run[root] = time.monotonic()
                    await self._check(root)
            next_due = min([self._next_due(root) for root in self.intervals] + [time.monotonic() + MAX_SLEEP_SECONDS])
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=max(0.0, next_due - time.monotonic()))
            except asyncio.TimeoutError:
                pass

    async def _check(self, root: str) -> None:
        if not (Path(root) / STATE_DIR).is_dir():
            return
        loop = asyncio.get_running_loop()
        try:
            report = await loop.run_in_executor(self.pool, self.runner.run, root, True, True)
        except BgrunError as error:
            if self.last_errors.get(root) != str(error):
                log.warning("consistency check of %s failed: %s", root, error)
                self.last_errors[root] = str(error)
            return
        except Exception:
            log.exception("consistency check of %s failed", root)
            return
        self.last_errors.pop(root, None)
        if not report.complete:
            # reconcile has logged each job that it could not check, so this names only the count.
            log.warning("consistency check of %s could not check %d job(s); see %s", root, len(report.unchecked),
                        report.report_path or "the log above")
        if report.consistent:
            log.debug("consistency check of %s: no drift", root)
            return
        details = report.to_dict()
        log.warning("consistency check of %s found drift; it repaired what it could", root)
        self.on_drift(root, details)
