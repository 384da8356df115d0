"""The Slurm backend: submit a recorded job with `sbatch`, read its state, reconcile and stop it.

The engine records the job and writes its log header as for a local job. Then:

- A delay of 0 submits at once. A delay under `SHORT_DELAY_SECONDS` is waited out by a detached
  waiter process (`slurm_step.py wait`), which then submits. A longer delay is passed to Slurm as
  `--begin=now+N`, so the job waits in the queue as PENDING.
- The batch script only execs the step (`slurm_step.py step`), a Python process inside the
  allocation that records the job as running, runs the command with its output in the log, and
  writes the attempt lines and the footer. On failure with retries left it submits the next
  attempt with `--begin=now+BACKOFF`.
- `sbatch --output` and `--error` both name the job's log, opened for appending.
- `bgrun stop` runs `scancel`, and `bgrun check` queries Slurm for every active Slurm job. When the
  step could not write the footer (scancel while pending, time limit, node failure), they write it
  from Slurm's state. A job that Slurm has no record of and whose log has no footer becomes `lost`.

Every Slurm command runs with `SLURM_CONF` set and a timeout of `CLIENT_TIMEOUT` seconds, because a
Slurm client without a config looks the controller up through DNS, and one whose controller is
down retries for a long time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import logfile, schema
from ..errors import BgrunError, StartError, UsageError
from ..store import Store

log = logging.getLogger("bgrun.slurm")

DEFAULT_CONFIG = Path("/etc/slurm/slurm.conf")
CLIENT_TIMEOUT = 15.0
SHORT_DELAY_SECONDS = 30.0
STEP_SCRIPT_FOLDER = "slurm"
# Files kept per job in STEP_SCRIPT_FOLDER: the batch script and the saved sbatch settings.
SUBMISSION_SUFFIXES = (".sh", ".json")
STEP_BOOT = (
    "import sys; sys.path[:0] = sys.argv[1].split('\\n'); "
    "from bgrun.backends.slurm_step import main; main(sys.argv[2:])"
)
# How long `bgrun stop` waits for the step to record the outcome after Slurm ended the job.
STOP_RECORD_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 60.0
# After a Slurm command fails or times out, reconciliation leaves that cluster's jobs alone this long.
UNREACHABLE_RETRY_SECONDS = 60.0
_unreachable_until: dict[str, float] = {}

# Slurm job states (squeue(1), "JOB STATE CODES") mapped onto bgrun's states.
STATE_MAP = {
    "PENDING": schema.SCHEDULED,
    "CONFIGURING": schema.SCHEDULED,
    "REQUEUED": schema.SCHEDULED,
    "REQUEUE_HOLD": schema.SCHEDULED,
    "REQUEUE_FED": schema.SCHEDULED,
    "RESV_DEL_HOLD": schema.SCHEDULED,
    "RUNNING": schema.RUNNING,
    "COMPLETING": schema.RUNNING,
    "SUSPENDED": schema.RUNNING,
    "STOPPED": schema.RUNNING,
    "SIGNALING": schema.RUNNING,
    "STAGE_OUT": schema.RUNNING,
    "RESIZING": schema.RUNNING,
    "COMPLETED": schema.SUCCEEDED,
    "FAILED": schema.FAILED,
    "TIMEOUT": schema.FAILED,
    "NODE_FAIL": schema.FAILED,
    "OUT_OF_MEMORY": schema.FAILED,
    "BOOT_FAIL": schema.FAILED,
    "DEADLINE": schema.FAILED,
    "PREEMPTED": schema.FAILED,
    "SPECIAL_EXIT": schema.FAILED,
    "REVOKED": schema.FAILED,
    "CANCELLED": schema.CANCELLED,
}


class SlurmUnavailable(BgrunError):
    """A Slurm command failed or timed out, so the job's state in Slurm is unknown."""


@dataclass
class SlurmJob:
    """One job as `scontrol show job` or `sacct` reports it."""

    job_id: str
    state: str
    reason: str | None
    exit_code: int | None
    signal: int | None
    completing: bool
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def bgrun_state(self) -> str:
        return STATE_MAP.get(self.state, schema.FAILED)

    @property
    def final(self) -> bool:
        return self.bgrun_state in schema.FINAL_STATES and not self.completing


@dataclass
class Reconciled:
    """A drift found between a job's record and Slurm, and whether it was repaired.

    `checked` is False when Slurm could not be asked, so the job's state is unknown.
    """

    detail: str
    repaired: bool
    checked: bool = True


# ---------------------------------------------------------------------------------------------
# Client commands


def client_environ(environ: Mapping[str, str] | None = None, slurm_conf: str | None = None) -> dict[str, str]:
    """Return `environ` with SLURM_CONF set, or raise UsageError when no config can be found."""
    env = dict(os.environ if environ is None else environ)
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    if env.get("SLURM_CONF"):
        if not Path(env["SLURM_CONF"]).is_file():
            raise UsageError(
                f"Slurm config not found: SLURM_CONF={env['SLURM_CONF']} is not a file; set SLURM_CONF to "
                f"the cluster's slurm.conf"
            )
        return env
    if DEFAULT_CONFIG.is_file():
        env["SLURM_CONF"] = str(DEFAULT_CONFIG)
        return env
    raise UsageError(
        f"no Slurm config: SLURM_CONF is not set and {DEFAULT_CONFIG} does not exist; set SLURM_CONF "
        f"to the cluster's slurm.conf, or use backend 'local'"
    )


def check_client(environ: Mapping[str, str]) -> None:
    """Raise UsageError when the Slurm config or the `sbatch` program is missing."""
    env = client_environ(environ)
    if shutil.which("sbatch", path=env.get("PATH", os.defpath)) is None:
        raise UsageError(
            "sbatch not found on PATH; install the Slurm client (Debian: slurm-client) or add its "
            "folder to PATH, or use backend 'local'"
        )


def run_client(argv: list[str], env: Mapping[str, str], timeout: float = CLIENT_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a Slurm command; raise SlurmUnavailable when it is missing or times out."""
    if not env.get("SLURM_CONF"):
        raise SlurmUnavailable(f"{argv[0]} not run: SLURM_CONF is missing from its environment")
    try:
        return subprocess.run(argv, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        raise SlurmUnavailable(f"{argv[0]} not found on PATH; install the Slurm client") from None
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(
            f"{argv[0]} timed out after {timeout:g} s: the Slurm controller named in "
            f"SLURM_CONF={env['SLURM_CONF']} does not respond; start slurmctld, or set SLURM_CONF to a "
            f"reachable cluster's slurm.conf"
        ) from None


def ping_controller(env: Mapping[str, str]) -> None:
    """Raise StartError unless `scontrol ping` reports the controller as up."""
    try:
        result = run_client(["scontrol", "ping"], env)
    except SlurmUnavailable as error:
        raise StartError(str(error)) from None
    if result.returncode != 0 or " is UP" not in result.stdout:
        raise StartError(
            f"the Slurm controller named in SLURM_CONF={env['SLURM_CONF']} is not reachable "
            f"({(result.stdout + result.stderr).strip()}); start slurmctld, or set SLURM_CONF to a "
            f"reachable cluster's slurm.conf"
        )


def _exit_status(text: str) -> tuple[int | None, int | None]:
    """Return (exit code, signal) from Slurm's `ExitCode=CODE:SIGNAL`."""
    code, _, signum = text.partition(":")
    try:
        code_value, signal_value = int(code), int(signum or 0)
    except ValueError:
        return None, None
    if signal_value:
        return None, signal_value
    return code_value, None


def query_job(slurm_id: str, env: Mapping[str, str]) -> SlurmJob | None:
    """Return Slurm's record of a job, or None when Slurm has no record of it.

    `scontrol show job` finds the job until slurmctld purges it (MinJobAge after it ends). After
    that, only `sacct` finds it, on clusters with accounting. Raises SlurmUnavailable when
    `scontrol` fails for another reason, or when `sacct` fails on a cluster with accounting.
    """
    result = run_client(["scontrol", "show", "job", "-o", slurm_id], env)
    if result.returncode == 0 and "JobState=" in result.stdout:
        fields = dict(re.findall(r"(\w+)=(\S*)", result.stdout))
        state = fields.get("JobState", "UNKNOWN")
        exit_code, signum = _exit_status(fields.get("ExitCode", ""))
        reason = fields.get("Reason")
        # A COMPLETING job's processes may still be writing, so it counts as running.
        return SlurmJob(slurm_id, state, None if reason in (None, "None") else reason, exit_code, signum,
                        completing=state == "COMPLETING", fields=fields)
    if "Invalid job id" not in result.stderr:
        raise SlurmUnavailable(f"scontrol show job {slurm_id} failed: {result.stderr.strip() or result.returncode}")
    return _query_accounting(slurm_id, env)


# Message that sacct 22.05 writes to stderr, exiting 1, when slurm.conf has
# AccountingStorageType=accounting_storage/none.
ACCOUNTING_DISABLED = "accounting storage is disabled"


def _query_accounting(slurm_id: str, env: Mapping[str, str]) -> SlurmJob | None:
    """Return the job from `sacct`, or None when the cluster has no accounting or no such job.

    Raises SlurmUnavailable when accounting is configured but `sacct` fails or times out (slurmdbd
    down), because the job's state is then unknown, not absent.
    """
    if shutil.which("sacct", path=env.get("PATH", os.defpath)) is None:
        return None
    argv = ["sacct", "-n", "-P", "-X", "-j", slurm_id, "-o", "JobID,State,ExitCode,Reason"]
    result = run_client(argv, env)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip()
        if ACCOUNTING_DISABLED in message:
            return None
        raise SlurmUnavailable(f"sacct -j {slurm_id} failed: {message or f'exit status {result.returncode}'}")
    for line in result.stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 4 or parts[0] != slurm_id:
            continue
        # sacct writes "CANCELLED by UID" where scontrol writes CANCELLED.
        state = parts[1].split()[0] if parts[1].strip() else "UNKNOWN"
        exit_code, signum = _exit_status(parts[2])
        reason = parts[3] if parts[3] not in ("", "None") else None
        return SlurmJob(slurm_id, state, reason, exit_code, signum, completing=False,
                        fields={"JobState": state, "ExitCode": parts[2], "Reason": parts[3]})
    return None


def parse_duration(text: str) -> float | None:
    """Return the seconds of a Slurm duration (`[DAYS-]HH:MM:SS`, `MM:SS`), or None (`UNLIMITED`)."""
    days, _, clock = text.rpartition("-")
    try:
        parts = [int(part) for part in clock.split(":")]
        seconds = 0
        for part in parts:
            seconds = seconds * 60 + part
        return seconds + int(days or 0) * 86400
    except ValueError:
        return None


def describe(slurm_job: SlurmJob) -> str:
    """Return the reason text that records Slurm's own state, such as `Slurm TIMEOUT`.

    A job that ended before it ran keeps its last pending reason in Slurm (`Resources`), which
    the text marks as such, so it does not read as the cause of the end.
    """
    text = f"Slurm {slurm_job.state}"
    if not slurm_job.reason:
        return text
    if slurm_job.final and slurm_job.fields.get("RunTime") == "00:00:00":
        return f"{text} while pending ({slurm_job.reason})"
    return f"{text}: {slurm_job.reason}"


def is_queued_in_slurm(job: Mapping[str, Any]) -> bool:
    """Return True for a Slurm job that sbatch accepted and whose step has not started."""
    return job.get("backend") == "slurm" and job.get("state") == schema.SCHEDULED and bool(job.get("backend_id"))


# Slurm's pending reason before the scheduler has looked at a new job.
NO_REASON = "None"


def parse_squeue(text: str) -> dict[str, str]:
    """Return {Slurm job id: pending reason} from `squeue -h -o %i|%T|%r` output.

    Only PENDING jobs with a reason other than `None` are included.
    """
    reasons = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) == 3 and parts[1] == "PENDING" and parts[2] and parts[2] != NO_REASON:
            reasons[parts[0]] = parts[2]
    return reasons


def read_pending_reasons(slurm_ids: Iterable[str], slurm_conf: str | None,
                         timeout: float = CLIENT_TIMEOUT) -> dict[str, str]:
    """Return the pending reason of each of `slurm_ids` that Slurm still lists as PENDING.

    Raises BgrunError when the config is missing or squeue fails or times out.
    """
    ids = sorted(set(slurm_ids), key=int)
    if not ids:
        return {}
    env = client_environ(slurm_conf=slurm_conf)
    result = run_client(["squeue", "-h", "-j", ",".join(ids), "-o", "%i|%T|%r"], env, timeout=timeout)
    if result.returncode != 0:
        # squeue exits 1 when none of the ids is known any more, for example after they all started
        # and ended between two reads.
        if "Invalid job id" in result.stderr:
            return {}
        raise SlurmUnavailable(f"squeue failed: {result.stderr.strip() or f'exit status {result.returncode}'}")
    return parse_squeue(result.stdout)


def one_line(text: str) -> str:
    """Return a Slurm command's output on one line, for messages (slurmctld's banners span several)."""
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Submission


def sidecar_path(store: Store, job_id: str, suffix: str) -> Path:
    return Path(store.state_dir) / STEP_SCRIPT_FOLDER / f"{job_id}{suffix}"


def write_submission_files(store: Store, job: dict[str, Any], options: list[str], slurm_conf: str) -> None:
    """Write the batch script and the settings that later submissions and checks need."""
    from ..engine.spawn import hook_path

    folder = Path(store.state_dir) / STEP_SCRIPT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    step = [sys.executable, "-I", "-S", "-c", STEP_BOOT, hook_path(), "step", str(store.state_dir), job["id"]]
    script = "#!/bin/sh\n# bgrun job %s: the step records the job, runs its command and writes the footer.\nexec %s\n" % (
        job["id"], shlex.join(step))
    sidecar_path(store, job["id"], ".sh").write_text(script)
    sidecar_path(store, job["id"], ".json").write_text(json.dumps({"options": options, "slurm_conf": slurm_conf}))


def read_submission(store: Store, job_id: str) -> dict[str, Any]:
    """Return the saved sbatch options and SLURM_CONF of a job ({} when the file is missing)."""
    try:
        return json.loads(sidecar_path(store, job_id, ".json").read_text())
    except (OSError, ValueError):
        return {}


def sbatch_argv(store: Store, job: dict[str, Any], options: list[str], begin_seconds: float) -> list[str]:
    argv = ["sbatch", "--parsable", f"--job-name={job['name']}", f"--chdir={job['cwd']}",
            f"--output={job['log_path']}", f"--error={job['log_path']}", "--open-mode=append"]
    if not any(option in ("--requeue", "--no-requeue") for option in options):
        argv.append("--no-requeue")
    if begin_seconds > 0:
        argv.append(f"--begin=now+{math.ceil(begin_seconds)}")
    return argv + list(options) + [str(sidecar_path(store, job["id"], ".sh"))]


def submit(store: Store, job_id: str, env: Mapping[str, str], begin_seconds: float = 0.0) -> dict[str, Any]:
    """Run sbatch for the job's current attempt and record the Slurm job id; return the job.

    Raises StartError naming the fix when sbatch fails or times out.
    """
    job = store.get(job_id)
    saved = read_submission(store, job_id)
    env = client_environ(env, saved.get("slurm_conf"))
    argv = sbatch_argv(store, job, list(saved.get("options") or []), begin_seconds)
    Path(job["log_path"]).parent.mkdir(parents=True, exist_ok=True)
    try:
        result = run_client(argv, env)
    except SlurmUnavailable as error:
        raise StartError(f"sbatch failed: {error}") from None
    slurm_id = result.stdout.strip().split(";")[0]
    if result.returncode != 0 or not slurm_id.isdigit():
        message = one_line(result.stderr or result.stdout) or f"exit status {result.returncode}"
        raise StartError(
            f"sbatch failed: {message}; check the sbatch options ('slurm_options', "
            f"--sbatch-option) and that SLURM_CONF={env['SLURM_CONF']} names a running cluster"
        )
    log.info("job %s: submitted to Slurm as job %s", job_id, slurm_id)
    append_line(job, logfile.format_line("slurm job id", slurm_id))

    def apply(record: dict[str, Any]) -> None:
        record["backend_id"] = slurm_id
        if record["state"] == schema.SCHEDULED:
            record["reason"] = "Slurm PENDING"

    return store.update(job_id, apply)


def start_job(store: Store, job: dict[str, Any], plan: Any, start_at: float) -> dict[str, Any]:
    """Submit a recorded job, now, after a short wait in a detached waiter, or with --begin."""
    from ..engine.spawn import _fail_launch

    log_root = Path(plan.fields["log_root"])
    try:
        env = client_environ(plan.environ)
        write_submission_files(store, job, list(plan.settings.slurm_options), env["SLURM_CONF"])
        delay = start_at - time.time()
        if delay <= 0.05:
            return submit(store, job["id"], env)
        # The requested delay decides, not the time left, which planning has already shortened.
        if float(job.get("delay") or 0) >= SHORT_DELAY_SECONDS:
            job = submit(store, job["id"], env, begin_seconds=delay)
            return _start_releaser(store, job, env, start_at)
        ping_controller(env)
        return _start_waiter(store, job, env, start_at)
    except (StartError, UsageError, OSError) as error:
        message = str(error)
        _fail_launch(store, log_root, job, message)
        if isinstance(error, BgrunError):
            raise
        raise StartError(f"job {job['id']} failed to start: {message}") from None


def _start_releaser(store: Store, job: dict[str, Any], env: Mapping[str, str], start_at: float) -> dict[str, Any]:
    """Start the waiter that makes Slurm consider a --begin job as soon as its begin time comes.

    The job is already queued, so a waiter that cannot start only makes the job start later.
    """
    try:
        return _start_waiter(store, job, env, start_at, verb="release")
    except OSError as error:
        log.warning("job %s: cannot start the waiter for its begin time (%s); Slurm starts it at its "
                    "next scheduling pass after that time", job["id"], error)
        return job


def release_begin_time(job_id: str, slurm_id: str, env: Mapping[str, str]) -> bool:
    """Tell slurmctld that a pending job's begin time has come; return True when it accepted.

    slurmctld looks at a job whose `--begin` time has passed only in its next scheduling pass,
    which can be a minute away (sched_interval 60 s, bf_interval 30 s by default). An update of
    the job makes it schedule at once, and StartTime=now keeps the begin time it already had.
    """
    try:
        result = run_client(["scontrol", "update", f"JobId={slurm_id}", "StartTime=now"], env)
    except SlurmUnavailable as error:
        log.warning("job %s: cannot release Slurm job %s at its begin time: %s", job_id, slurm_id, error)
        return False
    if result.returncode != 0:
        log.warning("job %s: scontrol update of Slurm job %s at its begin time failed: %s", job_id, slurm_id,
                    one_line(result.stderr) or result.returncode)
        return False
    log.info("job %s: Slurm job %s released at its begin time", job_id, slurm_id)
    return True


def _start_waiter(store: Store, job: dict[str, Any], env: Mapping[str, str], start_at: float,
                  verb: str = "wait") -> dict[str, Any]:
    """Start a detached `slurm_step` waiter: `wait` submits at start_at, `release` releases the job then."""
    from ..engine import liveness
    from ..engine.spawn import hook_path

    argv = [sys.executable, "-I", "-S", "-c", STEP_BOOT, hook_path(), verb, str(store.state_dir), job["id"],
            repr(start_at)]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=dict(env), cwd="/", close_fds=True)
    create_time = liveness.create_time_of(process.pid)
    return store.update(job["id"], lambda record: record.update(supervisor_pid=process.pid,
                                                                supervisor_create_time=create_time))


def append_line(job: dict[str, Any], data: bytes) -> None:
    try:
        logfile.append(job["log_path"], data)
    except OSError as error:
        log.warning("job %s: cannot write to its log: %s", job["id"], error)


# ---------------------------------------------------------------------------------------------
# Reconciliation and stop


def _waiter_alive(job: dict[str, Any]) -> bool:
    from ..engine import liveness

    return liveness.is_alive(job.get("supervisor_pid"), job.get("supervisor_create_time"))


def finalise_from_slurm(store: Store, job: dict[str, Any], slurm_job: SlurmJob | None, *,
                        cancelled_by_request: bool = False) -> dict[str, Any]:
    """Write the footer and final state of a job whose step did not, from Slurm's state or the log."""
    from ..engine.finish import finalise
    from ..store.check import apply_footer

    current = store.get(job["id"])
    if current["state"] in schema.FINAL_STATES:
        return current
    footer = None
    try:
        footer = logfile.parse(Path(current["log_path"]))["footer"]
    except OSError:
        pass
    final = dict(current)
    if apply_footer(final, footer):
        fields = {key: final[key] for key in ("state", "reason", "exit_code", "signal", "ended_at", "duration")}
        return store.update(job["id"], lambda record: record.update(fields))
    if slurm_job is None:
        state = schema.CANCELLED if cancelled_by_request else schema.LOST
        reason = ("stopped by request; Slurm has no record of the job" if cancelled_by_request
                  else "Slurm has no record of the job and its log has no footer")
        return finalise(store, job["id"], state, reason=reason, exit_code=None, signum=None,
                        leftovers="not checked (Slurm job)")
    state = slurm_job.bgrun_state
    reason = describe(slurm_job)
    if cancelled_by_request or state == schema.CANCELLED:
        state = schema.CANCELLED
        reason = ("stopped by request, " if cancelled_by_request else "") + reason
        if not current.get("started_at"):
            reason += ", before it started"
    # Slurm reports ExitCode 0:0 for a job cancelled while pending, which is no exit code at all.
    started = bool(current.get("started_at"))
    return finalise(store, job["id"], state, reason=reason, exit_code=slurm_job.exit_code if started else None,
                    signum=slurm_job.signal if started else None, leftovers="not checked (Slurm job)",
                    ended_at=_end_time(slurm_job))


def _end_time(slurm_job: SlurmJob) -> str | None:
    """Return Slurm's EndTime of a job as bgrun writes times, or None when Slurm gave none.

    scontrol prints it in the local time zone without an offset, such as 2026-12-05T00:31:37.
    """
    from datetime import datetime

    text = slurm_job.fields.get("EndTime", "")
    try:
        return datetime.fromisoformat(text).astimezone().isoformat(timespec="milliseconds")
    except ValueError:
        return None


def reconcile(store: Store, job: dict[str, Any], repair: bool) -> Reconciled | None:
    """Compare an active Slurm job's record with Slurm; return the drift found, or None.

    Slurm that cannot be reached leaves the job alone, because its state is unknown, and the
    result has `checked` False.
    """
    if job["state"] in schema.FINAL_STATES:
        return None
    slurm_id = job.get("backend_id")
    if not slurm_id:
        if _waiter_alive(job) or _is_young(job):
            return None
        detail = f"recorded {job['state']} but never submitted to Slurm and its waiter is gone"
        if repair:
            finalise_from_slurm(store, job, None)
        return Reconciled(detail, repair)
    try:
        saved = read_submission(store, job["id"])
        env = client_environ(None, saved.get("slurm_conf"))
        if _unreachable_until.get(env["SLURM_CONF"], 0.0) > time.monotonic():
            return Reconciled(f"Slurm job {slurm_id} not checked: the controller in SLURM_CONF={env['SLURM_CONF']} "
                              f"did not respond in the last {UNREACHABLE_RETRY_SECONDS:g} s; start slurmctld", False,
                              checked=False)
        slurm_job = query_job(slurm_id, env)
    except (SlurmUnavailable, UsageError) as error:
        log.warning("job %s: cannot read Slurm job %s: %s", job["id"], slurm_id, error)
        if isinstance(error, SlurmUnavailable):
            # One timeout per cluster and minute, so a check of many jobs does not wait 15 s for each.
            _unreachable_until[env["SLURM_CONF"]] = time.monotonic() + UNREACHABLE_RETRY_SECONDS
        return Reconciled(f"Slurm job {slurm_id} not checked: {error}", False, checked=False)
    if slurm_job is not None and not slurm_job.final:
        return None
    if slurm_job is None:
        detail = f"recorded {job['state']} but Slurm has no record of job {slurm_id}"
    else:
        detail = f"recorded {job['state']} but Slurm job {slurm_id} ended as {slurm_job.state}"
    if repair:
        job = finalise_from_slurm(store, job, slurm_job)
        detail += f"; now {job['state']}"
    return Reconciled(detail, repair)


def _is_young(job: dict[str, Any], seconds: float = 30.0) -> bool:
    from datetime import datetime

    try:
        return time.time() - datetime.fromisoformat(job["created_at"]).timestamp() < seconds
    except (TypeError, ValueError, KeyError):
        return False


def stop_job(store: Store, job_id: str, grace: float | None = None,
             timeout: float = STOP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Stop a Slurm job and return its final record.

    A running job's step gets SIGTERM first (`scancel --batch --signal=TERM`), which it passes
    on to the command's process group as the local supervisor does. When the command has ended,
    the step cancels its own batch job and records the stop. A job still running `grace` seconds
    later (default: its stop_grace) is cancelled with `scancel`, and the cluster's KillWait then
    sets the time until SIGKILL. A pending job, or one not yet recorded as running, is cancelled
    at once.
    """
    job = store.get(job_id)
    if job["state"] in schema.FINAL_STATES:
        return job
    grace = float(job.get("stop_grace") or 10.0) if grace is None else grace
    saved = read_submission(store, job_id)
    env = client_environ(None, saved.get("slurm_conf"))
    store.mark_cancel(job_id)
    log.info("job %s: stop requested (Slurm job %s, grace %g s)", job_id, job.get("backend_id"), grace)
    attempt = _StopAttempt(store, job_id, env, grace)
    try:
        return attempt.run(grace + timeout)
    except StopTimedOut:
        raise
    except BgrunError as error:
        if attempt.delivered:
            raise BgrunError(
                f"job {job_id} got the stop signal, but {error}; run 'bgrun check --repair' once the Slurm "
                f"controller in SLURM_CONF={env['SLURM_CONF']} answers"
            ) from None
        # Nothing reached the job, so it must not be recorded as cancelled when it ends on its own.
        store.clear_cancel(job_id)
        log.warning("job %s: stop failed before any signal reached it: %s", job_id, error)
        fix = "" if "SLURM_CONF" in str(error) else (
            f"start slurmctld, or set SLURM_CONF to the cluster's slurm.conf (now {env['SLURM_CONF']}), then ")
        raise BgrunError(
            f"cannot stop job {job_id}: {error}. The job was not signalled and keeps running; {fix}run "
            f"'bgrun stop {job_id}' again"
        ) from None


class StopTimedOut(BgrunError):
    """Raised when a stopped job did not reach a final state in time, although the stop reached it."""


class _StopAttempt:
    """One `bgrun stop` of a Slurm job. `delivered` turns True once a signal or scancel reached it."""

    def __init__(self, store: Store, job_id: str, env: Mapping[str, str], grace: float):
        self.store = store
        self.job_id = job_id
        self.env = env
        self.grace = grace
        self.delivered = False

    def run(self, limit: float) -> dict[str, Any]:
        """Stop the job within `limit` seconds and return its final record."""
        store, job_id, env, grace = self.store, self.job_id, self.env, self.grace
        deadline = time.monotonic() + limit
        signalled_id = None
        signalled_at = 0.0
        cancelled_id = None
        ended_since: float | None = None
        while time.monotonic() < deadline:
            job = store.get(job_id)
            if job["state"] in schema.FINAL_STATES:
                return job
            slurm_id = job.get("backend_id")
            if not slurm_id:
                if _waiter_alive(job):
                    os.kill(int(job["supervisor_pid"]), signal.SIGTERM)
                    self.delivered = True
                else:
                    return finalise_from_slurm(store, job, None, cancelled_by_request=True)
                time.sleep(0.1)
                continue
            if job["state"] == schema.RUNNING and grace > 0 and slurm_id != cancelled_id:
                if slurm_id != signalled_id:
                    signalled_id = slurm_id
                    signalled_at = time.monotonic()
                    if _signal_step(job_id, slurm_id, env):
                        self.delivered = True
                    else:
                        signalled_at = -math.inf
                if time.monotonic() - signalled_at < grace:
                    time.sleep(0.2)
                    continue
                log.info("job %s: still running %g s after SIGTERM, cancelling Slurm job %s", job_id, grace, slurm_id)
            if slurm_id != cancelled_id:
                result = run_client(["scancel", slurm_id], env)
                if result.returncode != 0 and "Invalid job id" not in result.stderr:
                    raise BgrunError(f"scancel {slurm_id} failed: {one_line(result.stderr) or result.returncode}")
                cancelled_id = slurm_id
                self.delivered = True
            slurm_job = query_job(slurm_id, env)
            if slurm_job is None or slurm_job.final:
                ended_since = ended_since or time.monotonic()
                # The step may still be writing the footer, so give it a moment before writing one here.
                if not job.get("started_at") or time.monotonic() - ended_since > STOP_RECORD_SECONDS:
                    return finalise_from_slurm(store, job, slurm_job, cancelled_by_request=True)
            time.sleep(0.2)
        raise StopTimedOut(
            f"job {job_id} did not reach a final state within {limit:g} s of the stop request; run "
            f"'bgrun check --repair' and 'bgrun show {job_id}'"
        )


def _signal_step(job_id: str, slurm_id: str, env: Mapping[str, str]) -> bool:
    """Send SIGTERM to the step of a running Slurm job only; return False when scancel failed.

    Without `--batch`, `scancel --signal` skips the batch step, which is the step here because
    the batch script execs it (scancel(1), Slurm 22.05).
    """
    result = run_client(["scancel", "--batch", "--signal=TERM", slurm_id], env)
    if result.returncode != 0:
        log.warning("job %s: scancel --batch --signal=TERM %s failed: %s", job_id, slurm_id,
                    result.stderr.strip() or result.returncode)
        return False
    return True
