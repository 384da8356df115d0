"""The supervisor that waits for one job: light enough to run one per job.

Launchers start it from its cached bytecode (`python -S -I -c SUPERVISOR_BOOT ENGINE_DIR …`), and
it imports only `os`, `time`, `sys` and `_signal`, so it costs under 3 MB of private memory while
it waits (docs/benchmarks.md has the measurement). It
does only what must happen at an exact moment or cannot be lost:

1. In `launch:FD` mode it forks once and the parent exits, so the launcher reaps it at once and
   the supervisor belongs to no editor, server or terminal. It reports its PID on descriptor FD.
   A supervisor exec'd for a retry runs in `retry` mode and skips this step.
2. It sleeps until the start time, then forks the job: a new session and process group, stdin
   from /dev/null, stdout and stderr both the log file opened for appending. The job writes
   straight to the file, so no pipe stands between it and its log.
3. It runs the `started` hook (a full Python process with the store) to record the job as
   running, then waits for the job with waitpid, which gives the exact exit code or signal.
4. It replaces itself (exec) with the `after` hook, which records the attempt, stops leftover
   processes and either writes the footer or execs a new supervisor for the next attempt.

SIGTERM before the job starts cancels it; while the job runs, SIGTERM is passed on to the job's
process group. SIGHUP and SIGINT are ignored, so closing a terminal changes nothing.
Usage: supervise.py MODE STATE_DIR JOB_ID LOG_PATH CWD START_AT N/TOTAL HOOK_PYTHON HOOK_PATH -- ARGV…
"""

import os
import sys
import time

import _signal

# Only the job gets this variable, so `bgrun stop` (stop.py) can find processes that left its
# session. The supervisor and its hooks do not carry it.
JOB_MARKER_VARIABLE = "BGRUN_JOB"

# Code of the command that starts this module from its cached bytecode (`import supervise`).
# It costs about 0.4 MiB less private memory than running the file as a script, because CPython
# compiles a script's source on every start and keeps the compiler's allocations.
SUPERVISOR_BOOT = "import sys; sys.path.append(sys.argv[1]); import supervise; supervise.run(sys.argv[2:])"

HOOK_BOOT = (
    "import sys; sys.path[:0] = sys.argv[1].split('\\n'); "
    "from bgrun.engine.hooks import main; main(sys.argv[2:])"
)


class Cancelled(Exception):
    pass


job_pid = 0


def on_term(signum, frame):
    if job_pid:
        try:
            os.killpg(job_pid, _signal.SIGTERM)
        except OSError:
            # The job has not called setsid yet, so its group does not exist. SIGTERM is blocked
            # in it until its handlers are reset, so the signal waits there and then ends it.
            try:
                os.kill(job_pid, _signal.SIGTERM)
            except OSError:
                pass
    else:
        raise Cancelled()


def run_hook(hook_python, hook_path, args):
    """Run a hook to completion and reap it; a failing hook never stops the supervisor."""
    try:
        pid = os.posix_spawn(hook_python, [hook_python, "-I", "-S", "-c", HOOK_BOOT, hook_path] + args,
                             os.environ)
        os.waitpid(pid, 0)
    except OSError:
        pass


def exec_hook(hook_python, hook_path, args):
    os.execv(hook_python, [hook_python, "-I", "-S", "-c", HOOK_BOOT, hook_path] + args)


def resolve_program(name):
    """Return the path of program `name` found on PATH now, or `name` when it is not found there.

    Looking it up before the timer spares the start the search that os.execvpe would make in the
    forked child. Relative PATH entries are left to execvpe, because they depend on the job's cwd.
    """
    if "/" in name:
        return name
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder, name)
        if folder.startswith("/") and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return name


def start_job(argv, program, cwd, log_fd, attempt_line, marker):
    """Fork and exec the job; return (pid, errno text) where the text is empty on success.

    SIGTERM stays blocked from before the fork until `job_pid` is set, so a stop request can no
    longer arrive in the gap where the job exists but the supervisor would treat it as not started.
    """
    global job_pid
    read_end, write_end = os.pipe()
    _signal.pthread_sigmask(_signal.SIG_BLOCK, [_signal.SIGTERM])
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.setsid()
            for signum in (_signal.SIGHUP, _signal.SIGINT, _signal.SIGTERM, _signal.SIGPIPE,
                           _signal.SIGXFSZ, _signal.SIGQUIT):
                _signal.signal(signum, _signal.SIG_DFL)
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [_signal.SIGTERM])
            null_fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null_fd, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.write(1, attempt_line.replace(b"PID", str(os.getpid()).encode()))
            os.chdir(cwd)
            env = dict(os.environ)
            env[JOB_MARKER_VARIABLE] = marker
            if "/" in program:
                os.execve(program, argv, env)
            os.execvpe(argv[0], argv, env)
        except BaseException as error:
            message = "[bgrun] start failed: %s: %s\n" % (type(error).__name__, error)
            try:
                os.write(2, message.encode("utf-8", "replace"))
                os.write(write_end, str(getattr(error, "errno", 0) or 1).encode())
            finally:
                os._exit(127)
    job_pid = pid
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [_signal.SIGTERM])
    os.close(write_end)
    failure = b""
    while True:
        chunk = os.read(read_end, 64)
        if not chunk:
            break
        failure += chunk
    os.close(read_end)
    return pid, failure.decode()


def iso_now():
    now = time.time()
    offset = time.strftime("%z", time.localtime(now))
    return "%s.%03d%s:%s" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)),
                             int((now % 1) * 1000), offset[:3], offset[3:])


def main(argv):
    separator = argv.index("--")
    mode, state_dir, job_id, log_path, cwd, start_at, attempt, hook_python, hook_path = argv[:separator]
    job_argv = argv[separator + 1:]
    program = resolve_program(job_argv[0])
    hook_args = [state_dir, job_id]

    _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    if mode.startswith("launch:"):
        report_fd = int(mode.split(":", 1)[1])
        if os.fork() > 0:
            os._exit(0)
        try:
            os.write(report_fd, str(os.getpid()).encode())
        except OSError:
            # The launcher died before reading the PID, so the supervisor records it itself.
            run_hook(hook_python, hook_path, ["adopted", str(os.getpid())] + [state_dir, job_id])
        os.close(report_fd)
    _signal.signal(_signal.SIGTERM, on_term)

    number, total = attempt.split("/")
    try:
        while True:
            remaining = float(start_at) - time.time()
            if remaining <= 0:
                break
            # Waking each minute rereads the wall clock, so a clock step or a suspend of the
            # host moves the start no later than a minute past its time.
            time.sleep(min(remaining, 60.0))
        # O_CREAT recreates a log that was deleted during the timer, so the job still has one.
        # When even that fails (its folder is gone), the attempt ends as a start failure.
        try:
            log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            exec_hook(hook_python, hook_path,
                      ["after", str(127 << 8), str(error.errno or 1)] + hook_args + argv)
        started_at = time.time()
        line = "[bgrun] attempt %s of %s started: %s pid PID\n" % (number, total, iso_now())
        marker = "%s@%s" % (job_id, os.path.dirname(state_dir))
        pid, failure = start_job(job_argv, program, cwd, log_fd, line.encode(), marker)
    except Cancelled:
        exec_hook(hook_python, hook_path, ["cancelled-before-start"] + hook_args + argv)
    if failure:
        _, status = os.waitpid(pid, 0)
        exec_hook(hook_python, hook_path, ["after", str(status), failure] + hook_args + argv)
    run_hook(hook_python, hook_path, ["started", str(pid), number, repr(started_at)] + hook_args)
    _, status = os.waitpid(pid, 0)
    exec_hook(hook_python, hook_path, ["after", str(status), ""] + hook_args + argv)


def run(argv):
    """Run `main`, reporting a crash of the supervisor itself to the log root's errors folder."""
    try:
        main(argv)
    except BaseException:
        import traceback

        text = "internal error in the supervisor of job %s at %s\n%s" % (argv[2], iso_now(), traceback.format_exc())
        try:
            report_crash(argv[1], argv[2], argv[8], text)
        finally:
            os._exit(70)


def report_crash(state_dir, job_id, hook_path, text):
    """Write a crash report to logs/errors, or next to the job records when that fails."""
    try:
        sys.path[:0] = hook_path.split("\n")
        from bgrun.engine.errorlog import write_error_log

        if write_error_log(os.path.dirname(state_dir), "supervisor", text) is not None:
            return
    except BaseException:
        pass
    fd = os.open(os.path.join(state_dir, "supervisor-errors.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (text + "\n").encode("utf-8", "replace"))
    os.close(fd)


if __name__ == "__main__":
    run(sys.argv[1:])
