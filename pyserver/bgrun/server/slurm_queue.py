"""Slurm's pending reason for each Slurm job that waits in the queue, read with squeue.

A Slurm job stays `scheduled` in the store from `sbatch` until its step starts on a node, and the
store does not say why it waits. The server runs one `squeue` per cluster every QUEUE_SECONDS while
such jobs exist, on a thread of its own because a Slurm command may take up to its 15 s timeout.
The reason (`Resources`, `Priority`, `BeginTime`, `JobHeldUser`, ...) lives in the server's memory
and goes out as the job's `queue_reason`. It is never written to the store.

A job still waiting for `BeginTime` after its `scheduled_for` has passed is released once with
`scontrol update StartTime=now` (slurm.release_begin_time), because slurmctld would otherwise
start it only at its next scheduling pass. That covers a retry's backoff, which the step submits
with `--begin` from the node, where no waiter can outlive the job.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from ..backends import slurm
from ..errors import BgrunError

log = logging.getLogger("bgrun.server.slurm_queue")

QUEUE_SECONDS = 5.0
BEGIN_TIME = "BeginTime"
# A job waiting for its begin time this long after scheduled_for is released.
RELEASE_AFTER_SECONDS = 1.0


class QueueReasons:
    """Pending reasons of the queued Slurm jobs of one log root, keyed by bgrun job id.

    `track`, `forget` and `snapshot` run under the root's lock, and the poller runs squeue without it.
    """

    def __init__(self, slurm_conf_of: Callable[[str], str | None]):
        self.slurm_conf_of = slurm_conf_of
        self.queued: dict[str, dict[str, Any]] = {}
        self.reasons: dict[str, str] = {}

    def track(self, job_id: str, job: Mapping[str, Any]) -> None:
        if slurm.is_queued_in_slurm(job):
            self.queued[job_id] = dict(job)
        else:
            self.queued.pop(job_id, None)
            self.reasons.pop(job_id, None)

    def forget(self, job_id: str) -> None:
        self.queued.pop(job_id, None)
        self.reasons.pop(job_id, None)

    def reason_of(self, job_id: str) -> str | None:
        return self.reasons.get(job_id)

    def snapshot(self) -> dict[str | None, dict[str, dict[str, Any]]]:
        """Return the queued jobs grouped by the SLURM_CONF they were submitted with."""
        groups: dict[str | None, dict[str, dict[str, Any]]] = {}
        for job_id, job in self.queued.items():
            groups.setdefault(self.slurm_conf_of(job_id), {})[job_id] = job
        return groups


class QueuePoller:
    """The thread that reads pending reasons for every log root and reports the changed ones.

    `roots` returns (lock, QueueReasons, report) for each watched log root, where report(job) hands
    a job whose reason changed to the server.
    """

    def __init__(self, roots: Callable[[], list[tuple[threading.Lock, QueueReasons, Callable[[dict[str, Any]], None]]]]):
        self.roots = roots
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bgrun-slurm-queue", daemon=True)
        # Clusters whose last squeue failed, with the time before which they are not asked again.
        self.unreachable_until: dict[str | None, float] = {}
        # Slurm job ids already released at their begin time, so each is released once.
        self.released: set[str] = set()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.wait(QUEUE_SECONDS):
            try:
                self.poll()
            except Exception:
                log.exception("reading Slurm pending reasons failed; trying again in %g s", QUEUE_SECONDS)

    def poll(self) -> None:
        for lock, queue, report in self.roots():
            with lock:
                groups = queue.snapshot()
            for slurm_conf, jobs in groups.items():
                reasons = self._read(slurm_conf, jobs)
                self._release_overdue(slurm_conf, jobs, reasons)
                # Report under the lock, so that a newer record of the job cannot be reported first.
                with lock:
                    for job_id in jobs:
                        job = queue.queued.get(job_id)
                        if job is None:
                            continue
                        reason = reasons.get(str(job["backend_id"]))
                        if queue.reasons.get(job_id) == reason:
                            continue
                        if reason is None:
                            queue.reasons.pop(job_id, None)
                        else:
                            queue.reasons[job_id] = reason
                        report(job)

    def _release_overdue(self, slurm_conf: str | None, jobs: Mapping[str, Mapping[str, Any]],
                         reasons: Mapping[str, str]) -> None:
        """Release each job that still waits for BeginTime after its scheduled_for."""
        now = time.time()
        for job_id, job in jobs.items():
            slurm_id = str(job["backend_id"])
            if reasons.get(slurm_id) != BEGIN_TIME or slurm_id in self.released:
                continue
            due = _epoch(job.get("scheduled_for"))
            if due is None or now - due < RELEASE_AFTER_SECONDS:
                continue
            self.released.add(slurm_id)
            try:
                env = slurm.client_environ(slurm_conf=slurm_conf)
            except BgrunError as error:
                log.warning("job %s: cannot release Slurm job %s: %s", job_id, slurm_id, error)
                continue
            slurm.release_begin_time(job_id, slurm_id, env)

    def _read(self, slurm_conf: str | None, jobs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
        """Return the pending reasons of `jobs`' Slurm ids, or {} while their cluster is unreachable.

        An empty result clears the reasons the server sends, because an old reason may be wrong.
        """
        now = time.monotonic()
        if self.unreachable_until.get(slurm_conf, 0.0) > now:
            return {}
        try:
            reasons = slurm.read_pending_reasons((str(job["backend_id"]) for job in jobs.values()), slurm_conf)
        except BgrunError as error:
            self.unreachable_until[slurm_conf] = now + slurm.UNREACHABLE_RETRY_SECONDS
            log.warning("cannot read the Slurm queue for job(s) %s (%s); trying again in %g s",
                        ", ".join(sorted(jobs, key=int)), error, slurm.UNREACHABLE_RETRY_SECONDS)
            return {}
        self.unreachable_until.pop(slurm_conf, None)
        return reasons


def _epoch(text: Any) -> float | None:
    """Return the seconds since the epoch of an ISO 8601 time with its offset, or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
