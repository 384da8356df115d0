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
from typing import Any, Mapping

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
    """A drift found between a job's record and Slurm, and whether it was repaired."""

    detail: str
    repaired: bool


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
    `scontrol` fails for another reason.
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


def _query_accounting(slurm_id: str, env: Mapping[str, str]) -> SlurmJob | None:
    """Return the job from `sacct`, or None when accounting is off or has no such job."""
    try:
        result = run_client(["sacct", "-n", "-P", "-X", "-j", slurm_id, "-o", "JobID,State,ExitCode"], env)
    except SlurmUnavailable:
        return None
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0] == slurm_id:
            state = parts[1].split()[0] if parts[1] else "UNKNOWN"
            exit_code, signum = _exit_status(parts[2])
            return SlurmJob(slurm_id, state, None, exit_code, signum, completing=False)
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
    """Return the reason text that records Slurm's own state, such as `Slurm TIMEOUT`."""
    return f"Slurm {slurm_job.state}" + (f": {slurm_job.reason}" if slurm_job.reason else "")


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
        raise StartError(f"sbatch failed for job {job_id}: {error}") from None
    slurm_id = result.stdout.strip().split(";")[0]
    if result.returncode != 0 or not slurm_id.isdigit():
        message = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        raise StartError(
            f"sbatch failed for job {job_id}: {message}; check the sbatch options ('slurm_options', "
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
        if delay >= SHORT_DELAY_SECONDS:
            return submit(store, job["id"], env, begin_seconds=delay)
        ping_controller(env)
        return _start_waiter(store, job, env, start_at)
    except (StartError, UsageError, OSError) as error:
        message = str(error)
        _fail_launch(store, log_root, job, message)
        if isinstance(error, BgrunError):
            raise
        raise StartError(f"job {job['id']} failed to start: {message}") from None


def _start_waiter(store: Store, job: dict[str, Any], env: Mapping[str, str], start_at: float) -> dict[str, Any]:
    from ..engine import liveness
    from ..engine.spawn import hook_path

    argv = [sys.executable, "-I", "-S", "-c", STEP_BOOT, hook_path(), "wait", str(store.state_dir), job["id"],
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
    return finalise(store, job["id"], state, reason=reason, exit_code=slurm_job.exit_code,
                    signum=slurm_job.signal, leftovers="not checked (Slurm job)")


def reconcile(store: Store, job: dict[str, Any], repair: bool) -> Reconciled | None:
    """Compare an active Slurm job's record with Slurm; return the drift found, or None.

    Slurm that cannot be reached leaves the job alone, because its state is unknown.
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
            return None
        slurm_job = query_job(slurm_id, env)
    except (SlurmUnavailable, UsageError) as error:
        log.warning("job %s: cannot read Slurm job %s: %s", job["id"], slurm_id, error)
        if isinstance(error, SlurmUnavailable):
            # One timeout per cluster and minute, so a check of many jobs does not wait 15 s for each.
            _unreachable_until[env["SLURM_CONF"]] = time.monotonic() + UNREACHABLE_RETRY_SECONDS
        return None
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


def stop_job(store: Store, job_id: str, timeout: float = STOP_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Cancel a Slurm job with scancel and return its final record.

    The cluster's KillWait, not the job's stop_grace, sets the time between SIGTERM and SIGKILL.
    """
    job = store.get(job_id)
    if job["state"] in schema.FINAL_STATES:
        return job
    store.mark_cancel(job_id)
    saved = read_submission(store, job_id)
    env = client_environ(None, saved.get("slurm_conf"))
    log.info("job %s: stop requested (Slurm job %s)", job_id, job.get("backend_id"))
    deadline = time.monotonic() + timeout
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
            else:
                return finalise_from_slurm(store, job, None, cancelled_by_request=True)
            time.sleep(0.1)
            continue
        if slurm_id != cancelled_id:
            result = run_client(["scancel", slurm_id], env)
            if result.returncode != 0 and "Invalid job id" not in result.stderr:
                raise BgrunError(f"scancel {slurm_id} failed for job {job_id}: {result.stderr.strip()}")
            cancelled_id = slurm_id
        slurm_job = query_job(slurm_id, env)
        if slurm_job is None or slurm_job.final:
            ended_since = ended_since or time.monotonic()
            # The step may still be writing the footer, so give it a moment before writing one here.
            if not job.get("started_at") or time.monotonic() - ended_since > STOP_RECORD_SECONDS:
                return finalise_from_slurm(store, job, slurm_job, cancelled_by_request=True)
        time.sleep(0.2)
    raise BgrunError(
        f"job {job_id} did not reach a final state within {timeout:g} s of scancel; run 'bgrun check "
        f"--repair' and 'bgrun show {job_id}'"
    )
