"""Submitting a job: validate the request, record the job, create its log, launch its supervisor.

`submit` returns as soon as the supervisor reports its PID, long before the timer ends. What can
be known at once (an invalid value, a missing working directory, a command not on PATH, a log
folder that cannot be written) raises an error naming the value and the fix, and is also written
to `logs/errors/` where the log root can be written.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .. import config, logfile, naming, schema
from ..errors import BgrunError, StartError, UsageError
from ..store import Store
# Importing supervise here also writes its bytecode cache, which the supervisor starts from.
from . import environment as job_environment
from . import supervise
from . import liveness
from .errorlog import write_error_log

log = logging.getLogger("bgrun.spawn")

ENGINE_DIR = str(Path(__file__).resolve().parent)
SHELL = "/bin/sh"
BACKENDS = ("local", "slurm")
# Linux limits each word passed to exec to MAX_ARG_STRLEN (32 pages: 131072 bytes with its NUL
# on 4 KiB pages), and a shell command line is one word of `/bin/sh -c`.
MAX_COMMAND_LENGTH = 128 * 1024 - 1
# The language server accepts the same maximum (server/params.py).
MAX_DELAY_SECONDS = 366 * 24 * 3600
SHELL_BUILTINS = frozenset(
    "alias bg break builtin cd command continue declare echo eval exec exit export false fc fg "
    "getopts hash jobs kill let local printf pwd read readonly return set shift source test times "
    "trap true type typeset ulimit umask unalias unset wait if then else elif fi case esac for while "
    "until do done function select time [ [[ { } ! . :".split()
)


@dataclass
class RunRequest:
    """A caller's run request. A field left as None takes its value from the settings."""

    command: str | None = None
    argv: Sequence[str] | None = None
    cwd: str | None = None
    category: str | None = None
    name: str | None = None
    delay: float | None = None
    retries: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    env_file: str | None = None
    environment: str | None = None
    log_root: str | None = None
    backoff: float | None = None
    stop_grace: float | None = None
    kill_leftovers: bool | None = None
    backend: str | None = None
    slurm_options: Sequence[str] | None = None
    # sbatch options added after those of the slurm_options setting (`bgrun run --sbatch-option`).
    extra_slurm_options: Sequence[str] = ()

    def overrides(self) -> dict[str, Any]:
        return {"delay": self.delay, "retries": self.retries, "env_file": self.env_file,
                "environment": self.environment, "log_root": self.log_root, "backoff": self.backoff,
                "stop_grace": self.stop_grace, "kill_leftovers": self.kill_leftovers,
                "backend": self.backend, "slurm_options": self.slurm_options}


@dataclass
class Plan:
    """A validated request: everything needed to record and launch the job."""

    settings: config.Settings
    fields: dict[str, Any]
    argv: list[str]
    environ: dict[str, str]


def check_platform() -> None:
    if os.name == "nt" or sys.platform.startswith("win"):
        raise StartError(
            "bgrun does not run jobs on Windows: it needs POSIX sessions and signals; run it in WSL "
            "or on a Linux or macOS host through VS Code Remote-SSH"
        )


def require_utf8(value: str, what: str) -> None:
    """Raise UsageError when `value` contains undecodable bytes, which the job store cannot record."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"invalid {what} {value!r}: it is not valid UTF-8 text; write such bytes with printf "
            f"escapes or put them in a script"
        ) from None


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def _validate_command(request: RunRequest) -> tuple[str, list[str] | None]:
    if (request.command is None) == (request.argv is None):
        raise UsageError("give exactly one of 'command' (a shell command line) and 'argv' (a list of words)")
    if request.argv is not None:
        argv = list(request.argv)
        if not argv or not all(isinstance(word, str) for word in argv) or not argv[0]:
            raise UsageError(f"invalid argv {request.argv!r}: expected a non-empty list of words, the first naming the program")
        if any("\0" in word for word in argv):
            raise UsageError("invalid argv: a word contains a NUL byte, which no program can receive")
        for word in argv:
            require_utf8(word, "argv word")
        if sum(_utf8_length(word) for word in argv) > MAX_COMMAND_LENGTH:
            raise UsageError(f"invalid argv: longer than {MAX_COMMAND_LENGTH} bytes; put the command in a script")
        return shlex.join(argv), argv
    command = request.command
    if not isinstance(command, str) or not command.strip():
        raise UsageError(f"invalid command {command!r}: expected a non-empty shell command line")
    if "\0" in command:
        raise UsageError("invalid command: it contains a NUL byte, which no shell can receive")
    require_utf8(command, "command")
    if _utf8_length(command) > MAX_COMMAND_LENGTH:
        raise UsageError(f"invalid command: longer than {MAX_COMMAND_LENGTH} bytes; put it in a script")
    return command, None


def _validate_cwd(cwd: str | None) -> Path:
    path = Path(os.path.expanduser(cwd)) if cwd else Path.cwd()
    if cwd is not None and (not isinstance(cwd, str) or "\0" in cwd):
        raise UsageError(f"invalid working directory {cwd!r}")
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_dir():
        raise StartError(f"working directory not found: {path}; create it or pass an existing folder with --cwd")
    path = path.resolve()
    require_utf8(str(path), "working directory")
    return path


def find_program(word: str, env: Mapping[str, str], cwd: Path) -> bool:
    """Return whether `word` names a program the job could execute."""
    if "/" in word:
        target = Path(word) if os.path.isabs(word) else cwd / word
        if target.is_file() and not os.access(target, os.X_OK):
            raise StartError(
                f"command not executable: {word!r} ({target}) has no execute permission; run "
                f"'chmod +x {word}' or start it with its interpreter (for example 'python3 {word}')"
            )
        return target.is_file() and os.access(target, os.X_OK)
    return shutil.which(word, path=env.get("PATH", os.defpath)) is not None


def _check_program(command: str, argv: list[str] | None, env: Mapping[str, str], cwd: Path) -> None:
    """Raise StartError when the program is certainly missing; unclear cases go to the job."""
    if argv is not None:
        program = argv[0]
    else:
        words_of_line = naming.split_shell_words(command)
        # A line that defines a shell function may call it by name, which no PATH lookup finds.
        if "()" in words_of_line or any(first == "(" and second == ")"
                                        for first, second in zip(words_of_line, words_of_line[1:])):
            return
        program = None
        for words in naming.simple_commands(words_of_line):
            rest = [w for w in words if not naming.ASSIGNMENT.match(w)]
            if not rest:
                continue
            if rest[0] == "cd" or rest[0] in naming.SETUP_COMMANDS and rest[0] != "env":
                if rest[0] in ("cd", "pushd", "source", "."):
                    return
                continue
            program = rest[0]
            break
        if program is None or program in SHELL_BUILTINS or any(c in program for c in "$`*?[~{(\\'\""):
            return
    if not find_program(program, env, cwd):
        raise StartError(
            f"command not found: {program!r} is not on PATH and not a file in {cwd}; check the "
            f"spelling, activate its environment (--environment), or give its full path"
        )


def plan_job(request: RunRequest, *, editor: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None, workspace: str | None = None) -> Plan:
    """Validate a request and resolve every setting, without writing anything."""
    check_platform()
    environ = dict(os.environ if environ is None else environ)
    command, argv = _validate_command(request)
    cwd = _validate_cwd(request.cwd)
    settings = config.resolve_settings(cwd, overrides=request.overrides(), editor=editor,
                                       environ=environ, workspace=workspace)
    name = naming.validate_segment(request.name, "name", "--name") if request.name is not None else naming.derive_name(command, argv)
    if request.category is not None:
        category = naming.validate_segment(request.category, "category", "--category")
    else:
        default = naming.validate_segment(settings.category, "default category", "the 'category' setting")
        category = naming.guess_category(name, command, argv, settings.category_rules, default)
        category = naming.validate_segment(category, "category from the category rules", "'category_rules'")

    added = job_environment.validate_env(request.env)
    env_file_values = job_environment.read_env_file(settings.env_file, str(cwd)) if settings.env_file else {}
    env, environment_prefix = job_environment.build_environment(environ, added, env_file_values, settings.environment,
                                                                str(cwd))
    _check_program(command, argv, env, cwd)

    delay = settings.delay
    if delay > MAX_DELAY_SECONDS:
        raise UsageError(f"invalid delay {delay:g} s: at most {MAX_DELAY_SECONDS} s (366 days); check the unit, which is seconds")
    if settings.backend not in BACKENDS:
        raise UsageError(f"invalid backend {settings.backend!r}: expected one of {', '.join(BACKENDS)}")
    settings.slurm_options = list(settings.slurm_options) + list(request.extra_slurm_options)
    if settings.backend == "slurm":
        from ..backends import slurm

        slurm.check_client(env)
    fields = {
        "backend": settings.backend, "name": name, "category": category, "command": command, "argv": argv, "shell": argv is None,
        "cwd": str(cwd), "log_root": settings.log_root, "env": added, "env_file": settings.env_file,
        "environment": environment_prefix, "delay": delay, "retries": settings.retries,
        "backoff": {"initial": settings.backoff, "factor": settings.backoff_factor, "max": settings.backoff_max},
        "stop_grace": settings.stop_grace, "kill_leftovers": settings.kill_leftovers,
    }
    return Plan(settings, fields, argv if argv is not None else [SHELL, "-c", command], env)


def preview(request: RunRequest, **context: Any) -> dict[str, Any]:
    """Return the name, category and log path a request would get, without starting it."""
    plan = plan_job(request, **context)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    folder = Path(plan.fields["log_root"]) / plan.fields["category"]
    return {"name": plan.fields["name"], "category": plan.fields["category"],
            "log_path": str(folder / f"{plan.fields['name']}_{stamp}.log"),
            "log_root": plan.fields["log_root"], "cwd": plan.fields["cwd"], "delay": plan.fields["delay"],
            "command": plan.fields["command"], "environment": plan.fields["environment"]}


def submit(request: RunRequest, *, run_later: Callable[[Callable[[], None]], Any] | None = None,
           **context: Any) -> dict[str, Any]:
    """Record and launch a job; return it as stored (state `scheduled`).

    With `run_later` (such as a thread pool's `submit`), the job is returned as soon as it is
    recorded and its supervisor is started by `run_later`. A supervisor that fails to start is
    then recorded on the job (state `failed`, with an error log) instead of raised. The timer is
    unaffected, because the supervisor waits for an absolute start time.
    """
    try:
        plan = plan_job(request, **context)
    except BgrunError as error:
        _report_rejection(request, error, context)
        raise
    return launch(plan, run_later)


def _report_rejection(request: RunRequest, error: BgrunError, context: Mapping[str, Any]) -> None:
    """Write a rejected request to logs/errors when a log root can be found for it."""
    try:
        cwd = Path(request.cwd) if request.cwd and Path(request.cwd).is_dir() else Path.cwd()
        try:
            settings = config.resolve_settings(cwd, overrides={"log_root": request.log_root},
                                               editor=context.get("editor"), environ=context.get("environ"),
                                               workspace=context.get("workspace"))
            root = Path(settings.log_root)
        except BgrunError:
            # An invalid setting may be the rejection itself; the rule without bgrun.toml still applies.
            root = config.resolve_log_root(cwd, request.log_root or (os.environ.get("BGRUN_LOG_ROOT") or None))
        if not root.is_dir():
            return
        write_error_log(root, "rejected", f"request rejected: {error}\ncommand: {request.command or request.argv!r}\ncwd: {request.cwd or cwd}")
    except (OSError, BgrunError, ValueError):
        pass


def launch(plan: Plan, run_later: Callable[[Callable[[], None]], Any] | None = None) -> dict[str, Any]:
    store, job, start_at = record_job(plan)
    if run_later is None:
        return start_job(store, job, plan, start_at)

    def start_in_background() -> None:
        try:
            start_job(store, job, plan, start_at)
        except StartError as error:
            log.error("job %s: %s", job["id"], error)

    run_later(start_in_background)
    return job


def record_job(plan: Plan) -> tuple[Store, dict[str, Any], float]:
    """Store a new job and write its log header; return the store, the job and its start time."""
    log_root = Path(plan.fields["log_root"])
    folder = log_root / plan.fields["category"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        store = Store(log_root)
    except OSError as error:
        raise StartError(
            f"log folder not writable: {folder} ({error.strerror}); fix its permissions or choose "
            f"another log root with --log-root or BGRUN_LOG_ROOT"
        ) from None

    created = time.time()
    start_at = created + plan.fields["delay"]
    fields = dict(plan.fields, created_at=_iso(created), scheduled_for=_iso(start_at))

    def reserve_log(job: dict[str, Any]) -> None:
        try:
            job["log_path"] = str(logfile.create_log_file(folder, job["name"], created))
        except OSError as error:
            raise StartError(
                f"log folder not writable: {folder} ({error}); fix its permissions or choose another "
                f"log root with --log-root or BGRUN_LOG_ROOT"
            ) from None

    # The header, which names the job id, is written only once the record is committed: a
    # launcher killed inside the transaction leaves at most an empty file, never a log that
    # claims an id the next job will get.
    job = store.create(fields, prepare=reserve_log)
    log.info("job %s: submitted %r, starts in %.3f s, log %s", job["id"], job["command"], plan.fields["delay"], job["log_path"])
    try:
        logfile.append(job["log_path"], logfile.header_bytes(job), new_line=False)
    except OSError as error:
        _fail_launch(store, log_root, job, f"its log {job['log_path']} could not be written: {error}")
        raise StartError(
            f"job {job['id']} failed to start: log folder not writable: {folder} ({error}); fix its "
            f"permissions or choose another log root with --log-root or BGRUN_LOG_ROOT"
        ) from None
    return store, job, start_at


def start_job(store: Store, job: dict[str, Any], plan: Plan, start_at: float) -> dict[str, Any]:
    """Start the supervisor of a recorded job and store its PID; return the updated job."""
    log_root = Path(plan.fields["log_root"])
    if job.get("backend") == "slurm":
        from ..backends import slurm

        return slurm.start_job(store, job, plan, start_at)
    try:
        supervisor_pid = start_supervisor(store, job, plan, start_at)
    except OSError as error:
        message = f"the supervisor could not be started: {error}"
        _fail_launch(store, log_root, job, message)
        raise StartError(f"job {job['id']} failed to start: {message}; check that {sys.executable} runs") from None
    create_time = liveness.create_time_of(supervisor_pid)
    return store.update(job["id"], lambda record: record.update(supervisor_pid=supervisor_pid,
                                                               supervisor_create_time=create_time))


def _fail_launch(store: Store, log_root: Path, job: dict[str, Any], message: str) -> None:
    """Record a job that could not be launched as failed, with an error log."""
    from .finish import finalise

    write_error_log(log_root, job["name"], f"job {job['id']}: {message}")
    finalise(store, job["id"], schema.FAILED, reason=message, exit_code=None, signum=None, leftovers="0")


def hook_path() -> str:
    """Return the import path for hooks: bgrun's own folder first, then this interpreter's path."""
    package_parent = str(Path(__file__).resolve().parent.parent.parent)
    return "\n".join([package_parent] + [p for p in sys.path if p and p != package_parent])


def supervisor_command() -> list[str]:
    """Return the command that starts supervise.py from its bytecode, before its arguments."""
    return [sys.executable, "-S", "-I", "-c", supervise.SUPERVISOR_BOOT, ENGINE_DIR]


def start_supervisor(store: Store, job: dict[str, Any], plan: Plan, start_at: float) -> int:
    """Launch the supervisor detached and return its PID once it reports it."""
    read_end, write_end = os.pipe()
    argv = supervisor_command() + [f"launch:{write_end}", str(store.state_dir),
            job["id"], job["log_path"], job["cwd"], repr(start_at), f"1/{job['retries'] + 1}", sys.executable, hook_path(),
            "--"] + plan.argv
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True, pass_fds=(write_end,),
                                   env=plan.environ, cwd="/", close_fds=True)
    finally:
        os.close(write_end)
    try:
        chunks = []
        while True:
            chunk = os.read(read_end, 32)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
    process.wait()
    text = b"".join(chunks).decode()
    if not text.isdigit():
        raise OSError(f"the supervisor exited with status {process.returncode} before reporting its PID")
    return int(text)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")


def rerun_request(job: dict[str, Any]) -> RunRequest:
    """Return a request that runs a job again with its command, folder, category and environment."""
    return RunRequest(
        command=None if job.get("argv") else job["command"],
        argv=job.get("argv"),
        cwd=job["cwd"],
        category=job["category"],
        name=job["name"],
        retries=job.get("retries"),
        backoff=(job.get("backoff") or {}).get("initial"),
        env=job.get("env") or {},
        env_file=job.get("env_file"),
        environment=job.get("environment"),
        log_root=job.get("log_root"),
        stop_grace=job.get("stop_grace"),
        kill_leftovers=job.get("kill_leftovers"),
        backend=job.get("backend"),
    )
