"""The `bgrun` command-line tool."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from . import __version__, config, schema
from .engine import spawn
from .engine.platform_checks import linger_warning
from .engine.stop import stop_job
from .errors import BgrunError, UsageError
from .store import Store

log = logging.getLogger("bgrun.cli")

FOLLOW_POLL_SECONDS = 0.2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bgrun",
        description="Run long commands in the background: after a timer, detached, with all output in one log file.",
    )
    parser.add_argument("--version", action="version", version=f"bgrun {__version__}")
    parser.add_argument("--log-root", help="folder that holds the logs and the job store (default: the log-root rule; see README)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more to stderr (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="verb", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="run a command in the background",
                              description="Run COMMAND in the background. One word after -- is a shell "
                                          "command line; two or more are an argv run without a shell.")
    run.add_argument("--category", help="log folder under the log root: model_dev, training, testing or your own")
    run.add_argument("--delay", type=float, help="seconds to wait before starting (default 1; 0 starts at once)")
    run.add_argument("--name", help="command name used in the log file name (default: derived from the command)")
    run.add_argument("--retries", type=int, help="extra attempts after a failure (default 0)")
    run.add_argument("--backoff", type=float, help="seconds before the first retry; doubles each retry (default 5)")
    run.add_argument("--cwd", help="working directory of the job (default: the current directory)")
    run.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="add an environment variable (repeatable)")
    run.add_argument("--env-file", help="dotenv file whose variables the job gets")
    run.add_argument("--environment", help="venv or conda prefix to activate for the job")
    run.add_argument("--stop-grace", type=float, help="seconds between SIGTERM and SIGKILL when stopping (default 10)")
    run.add_argument("--keep-leftovers", action="store_true", default=None,
                     help="leave processes that the job left behind running when it ends")
    run.add_argument("--backend", choices=spawn.BACKENDS,
                     help="where the job runs: local (a detached process) or slurm (sbatch); default: the 'backend' setting")
    run.add_argument("--sbatch-option", action="append", default=[], metavar="OPTION",
                     help="extra sbatch option for the slurm backend, such as --time=10 (repeatable; "
                          "added after the 'slurm_options' setting)")
    run.add_argument("--json", action="store_true", help="print the job as JSON")
    run.add_argument("-f", "--follow", action="store_true",
                     help="then print the log as it grows until the job ends, and exit with its exit code; "
                          "Ctrl-C stops following, not the job")
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")

    listing = commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--json", action="store_true", help="print the jobs as a JSON array")
    listing.add_argument("--state", action="append", choices=schema.STATES, help="only jobs in this state (repeatable)")
    listing.add_argument("--category", help="only jobs of this category")
    listing.add_argument("--limit", type=int, help="at most this many jobs")

    show = commands.add_parser("show", help="show one job")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print the job as JSON")

    logs = commands.add_parser("logs", help="print a job's log")
    logs.add_argument("id")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="follow the log until the job ends, then exit with the job's exit code")

    stop = commands.add_parser("stop", help="stop a job and its whole process tree")
    stop.add_argument("id")
    stop.add_argument("--grace", type=float, help="seconds between SIGTERM and SIGKILL (default: the job's setting)")
    stop.add_argument("--json", action="store_true", help="print the job as JSON")

    rerun = commands.add_parser("rerun", help="run a job's command again, in the same folder and category")
    rerun.add_argument("id")
    rerun.add_argument("--delay", type=float, help="seconds to wait before starting (default 1)")
    rerun.add_argument("--json", action="store_true", help="print the new job as JSON")

    remove = commands.add_parser("remove", help="remove a finished job: its record in both copies and its log")
    remove.add_argument("id")

    check = commands.add_parser("check", help="compare the job database, record files, logs and processes")
    check.add_argument("--repair", action="store_true", help="fix every drift found")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--full", action="store_true",
                       help="read every record file, not only those whose size or mtime changed")

    serve = commands.add_parser("serve", help="start the language server on stdio (used by the VS Code extension)")
    serve.add_argument("--log-level", default="INFO", help="server log level on stderr (default INFO)")
    serve.add_argument("--stdio", action="store_true",
                       help="talk over stdin and stdout (the only transport; accepted because language clients pass it)")
    return parser


def log_root_for(args: argparse.Namespace, cwd: str | None = None) -> Path:
    settings = config.resolve_settings(cwd or os.getcwd(), overrides={"log_root": args.log_root})
    return Path(settings.log_root)


def open_store(args: argparse.Namespace) -> Store:
    root = log_root_for(args)
    if not (root / ".bgrun").is_dir():
        raise UsageError(f"no bgrun jobs under log root {root}; run a job first, or pass --log-root or set BGRUN_LOG_ROOT")
    return Store(root)


def parse_env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator:
            raise UsageError(f"invalid --env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def print_job_started(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
        return
    print(f"job {job['id']} scheduled, starts in {job['delay']:g} s")
    if job.get("backend") == "slurm":
        print(f"slurm: {describe_slurm_placement(job, just_submitted=True)}")
    print(f"log: {job['log_path']}")


def local_clock(iso: str | None) -> str:
    """Return an ISO timestamp as `YYYY-MM-DD HH:MM:SS` in the time zone it was recorded in."""
    return (iso or "")[:19].replace("T", " ")


def seconds_until(iso: str | None) -> float:
    """Return the seconds from now until an ISO timestamp, negative when it has passed."""
    from datetime import datetime

    if not iso:
        return 0.0
    try:
        return datetime.fromisoformat(iso).timestamp() - time.time()
    except ValueError:
        return 0.0


def describe_slurm_placement(job: dict[str, Any], just_submitted: bool = False,
                             queue_reason: str | None = None) -> str:
    """Return where a Slurm job is, such as `submitted as job 42`, judged from its record alone.

    A scheduled job without `backend_id` waits for the detached waiter of a short delay to run
    sbatch. A scheduled job whose `scheduled_for` is still ahead was submitted with `--begin`
    (a long delay, or the backoff before a retry), so Slurm keeps it PENDING until then.
    `just_submitted` gives the delay in seconds, as `bgrun run` prints it, in place of a time.
    `queue_reason` is Slurm's pending reason when the caller read it with squeue.
    """
    slurm_id = job.get("backend_id")
    state = job["state"]
    due = job.get("scheduled_for")
    if not slurm_id:
        if state != schema.SCHEDULED:
            return "never submitted"
        if just_submitted:
            return f"will be submitted in {job['delay']:g} s"
        return f"will be submitted at {local_clock(due)}"
    if state == schema.RUNNING:
        return f"running as job {slurm_id}"
    if state == schema.SCHEDULED and seconds_until(due) > 0:
        return f"job {slurm_id}, pending until its begin time {local_clock(due)}"
    if state == schema.SCHEDULED and not just_submitted:
        return f"job {slurm_id}, queued in Slurm" + (f" ({queue_reason})" if queue_reason else "")
    return f"submitted as job {slurm_id}"


def list_backend(job: dict[str, Any]) -> str:
    """Return the BACKEND column of `bgrun list`: `local`, `slurm:<Slurm job id>`, or `slurm` before sbatch."""
    if job.get("backend") != "slurm":
        return job.get("backend") or "local"
    return f"slurm:{job['backend_id']}" if job.get("backend_id") else "slurm"


def command_run(args: argparse.Namespace) -> int:
    words = list(args.command)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise UsageError("no command given; usage: bgrun run [options] -- COMMAND...")
    request = spawn.RunRequest(
        command=words[0] if len(words) == 1 else None,
        argv=words if len(words) > 1 else None,
        cwd=args.cwd, category=args.category, name=args.name, delay=args.delay, retries=args.retries,
        env=parse_env_pairs(args.env), env_file=args.env_file, environment=args.environment,
        log_root=args.log_root, backoff=args.backoff, stop_grace=args.stop_grace,
        kill_leftovers=False if args.keep_leftovers else None,
        backend=args.backend, extra_slurm_options=args.sbatch_option,
    )
    job = spawn.submit(request)
    print_job_started(job, args.json)
    warning = linger_warning()
    if warning:
        print(warning, file=sys.stderr)
    if args.follow:
        sys.stdout.flush()
        return follow_log(Store(job["log_root"]), job["id"], follow=True)
    return 0


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def elapsed(job: dict[str, Any]) -> float | None:
    if job.get("duration") is not None:
        return job["duration"]
    if job["state"] == schema.RUNNING and job.get("started_at"):
        from datetime import datetime

        return (datetime.now().astimezone() - datetime.fromisoformat(job["started_at"])).total_seconds()
    return None


def command_list(args: argparse.Namespace) -> int:
    root = log_root_for(args)
    jobs = Store(root).list(states=args.state, category=args.category, limit=args.limit) \
        if (root / ".bgrun").is_dir() else []
    if args.json:
        print(json.dumps(jobs, indent=2, ensure_ascii=False))
        return 0
    if not jobs:
        print(f"no jobs under {root}")
        return 0
    # The BACKEND column appears only when a listed job ran elsewhere than locally.
    with_backend = any(job.get("backend", "local") != "local" for job in jobs)
    rows = [("ID", "STATE") + (("BACKEND",) if with_backend else ()) +
            ("CATEGORY", "NAME", "COMMAND", "START", "DURATION", "LOG")]
    for job in jobs:
        command = job["command"].replace("\n", " ")
        start = local_clock(job.get("started_at") or job.get("scheduled_for"))
        rows.append((job["id"], job["state"]) + ((list_backend(job),) if with_backend else ()) +
                    (job["category"], job["name"], command if len(command) <= 40 else command[:39] + "…", start,
                     format_duration(elapsed(job)), job["log_path"]))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(str(value).ljust(width) for value, width in zip(row, widths)) + "  " + str(row[-1]))
    return 0


def command_show(args: argparse.Namespace) -> int:
    job = open_store(args).get(args.id)
    if args.json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
        return 0
    for key in schema.FIELDS:
        value = job.get(key)
        if key == "attempts":
            for attempt in value or []:
                print(f"attempt {attempt.get('number')}: {attempt.get('state')}, started {attempt.get('started_at')}, "
                      f"ended {attempt.get('ended_at')}, exit code {attempt.get('exit_code')}, signal {attempt.get('signal')}")
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        print(f"{key}: {value}")
        if key == "backend_id" and job.get("backend") == "slurm":
            print(f"slurm: {describe_slurm_placement(job, queue_reason=read_queue_reason(job))}")
    return 0


def read_queue_reason(job: dict[str, Any]) -> str | None:
    """Return Slurm's pending reason for a Slurm job that waits in the queue, or None.

    A Slurm client that fails or times out only leaves the reason out, because `show` reads the
    store and must work while the controller is down.
    """
    from .backends import slurm

    if not slurm.is_queued_in_slurm(job):
        return None
    try:
        store = Store(job["log_root"])
        try:
            saved = slurm.read_submission(store, job["id"])
        finally:
            store.close()
        reasons = slurm.read_pending_reasons([str(job["backend_id"])], saved.get("slurm_conf"), timeout=5.0)
    except BgrunError as error:
        logging.getLogger("bgrun.cli").info("job %s: cannot read Slurm's pending reason: %s", job["id"], error)
        return None
    return reasons.get(str(job["backend_id"]))


def exit_status_of(job: dict[str, Any]) -> int:
    """Return the exit status `logs -f` ends with: the job's, 128+N for signal N, 1 if none."""
    if job.get("signal") is not None:
        return 128 + int(job["signal"])
    if job.get("exit_code") is not None:
        return int(job["exit_code"])
    return 0 if job["state"] == schema.SUCCEEDED else 1


def command_logs(args: argparse.Namespace) -> int:
    return follow_log(open_store(args), args.id, follow=args.follow)


def follow_log(store: Store, job_id: str, follow: bool) -> int:
    """Print a job's log; when following, print new bytes until the job ends and return its status."""
    job = store.get(job_id)
    path = Path(job["log_path"])
    out = sys.stdout.buffer
    position = 0

    def copy_new() -> None:
        nonlocal position
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < position:
                    position = 0
                handle.seek(position)
                data = handle.read()
        except FileNotFoundError:
            raise BgrunError(f"log file of job {job['id']} is missing: {path}; 'bgrun check' reports it") from None
        position += len(data)
        if data:
            out.write(data)
            out.flush()

    copy_new()
    if not follow:
        return 0
    while True:
        job = store.get(job_id)
        final = job["state"] in schema.FINAL_STATES
        copy_new()
        if final:
            _drain_until_sync_line(path, copy_new)
            return exit_status_of(job)
        time.sleep(FOLLOW_POLL_SECONDS)


def _drain_until_sync_line(path: Path, copy_new, timeout: float = 5.0) -> None:
    """Copy the log until its footer's sync line is there, which comes just after the record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - 4096))
                tail = handle.read()
        except OSError:
            return
        if b"\n[bgrun] sync: " in tail:
            break
        time.sleep(0.05)
    copy_new()


def command_stop(args: argparse.Namespace) -> int:
    store = open_store(args)
    job = store.get(args.id)
    if job["state"] in schema.FINAL_STATES:
        print(f"job {job['id']} already {job['state']}")
        return 0
    job = stop_job(store, args.id, grace=args.grace)
    if args.json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
    else:
        print(f"job {job['id']} {job['state']} ({schema.describe_outcome(job)})")
    return 0


def command_rerun(args: argparse.Namespace) -> int:
    store = open_store(args)
    request = spawn.rerun_request(store.get(args.id))
    request.delay = args.delay
    job = spawn.submit(request)
    print_job_started(job, args.json)
    return 0


def command_remove(args: argparse.Namespace) -> int:
    from .engine.remove import remove_job

    job, log_deleted = remove_job(open_store(args), args.id)
    if log_deleted:
        print(f"job {job['id']} removed, with its log {job['log_path']}")
    else:
        print(f"job {job['id']} removed; its log {job['log_path']} was missing or outside the log root, and was left alone")
    return 0


def command_check(args: argparse.Namespace) -> int:
    from .store.check import run_check

    report = run_check(log_root_for(args), repair=args.repair, full=args.full)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.to_text())
    return 0 if report.consistent and report.complete else 1


def command_serve(args: argparse.Namespace) -> int:
    from .server import main as serve_main

    return serve_main(["--log-level", args.log_level])


VERBS = {"run": command_run, "list": command_list, "show": command_show, "logs": command_logs,
         "stop": command_stop, "rerun": command_rerun, "remove": command_remove, "check": command_check,
         "serve": command_serve}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="bgrun: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return VERBS[args.verb](args)
    except BgrunError as error:
        print(f"bgrun: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
