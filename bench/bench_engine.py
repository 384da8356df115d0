#!/usr/bin/env python3
"""Benchmark bgrun's job engine next to `setsid nohup`, task-spooler (`tsp`) and `nq`.

Three measurements, printed as Markdown (and written as JSON with --json FILE):

1. Return time (until the launching command exits) and whole-process time (until the launched
   `sh -c 'echo x > FILE'` has written FILE) of each launcher, runs interleaved across launchers.
2. Timer accuracy of `bgrun run --delay D -- date +%s.%N`: the time that `date` prints minus the
   job's `scheduled_for`, and minus (the moment the bench invoked the CLI + D).
3. Private memory (USS) per running `sleep` job of the processes each tool keeps alive beside the
   job: bgrun's supervisor, tsp's client that waits for its job, nq's process that collects the
   exit status.

Every process the bench starts gets the environment variable BGRUN_BENCH_RUN set to a random
token, and so do their descendants. The bench finds processes by that token, and at the end it
signals by PID any that are still alive. Logs, the job store, TS_SOCKET, TMPDIR and NQDIR all
live in one temporary folder that is removed at the end unless --keep-temp is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

MARKER_VAR = "BGRUN_BENCH_RUN"
POLL_SECONDS = 0.0005
FOOTER_SYNC = b"\n[bgrun] sync: "
TIMER_GOAL_SECONDS = 0.050
USS_GOAL_BYTES = 3 * 1024 * 1024
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Machine, load and statistics


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
    }


def source_revision() -> dict[str, Any]:
    """Return the git commit of this checkout and the files under pyserver/ changed since it."""
    repository = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repository), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
        status = subprocess.run(["git", "-C", str(repository), "status", "--porcelain", "--", "pyserver"],
                                capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "changed": []}
    return {"commit": commit or None, "changed": [line[3:] for line in status.splitlines() if line.strip()]}


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def wait_for_quiet(max_load: float, timeout: float) -> dict[str, Any]:
    """Wait up to `timeout` seconds for the 1-minute load average to fall to `max_load` or less."""
    started = time.monotonic()
    initial = load_average()
    while os.getloadavg()[0] > max_load and time.monotonic() - started < timeout:
        time.sleep(5)
    return {"initial": initial, "after_wait": load_average(),
            "waited_seconds": round(time.monotonic() - started, 1), "max_load": max_load}


def summarize(values: list[float]) -> dict[str, Any]:
    """Return n, mean, median, p90 (inclusive quantile method), min and max of `values`."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "p90": None, "min": None, "max": None}
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
    return {"n": len(values), "mean": statistics.mean(values), "median": statistics.median(values),
            "p90": p90, "min": min(values), "max": max(values)}


# ---------------------------------------------------------------------------------------------
# Tools and processes


def bgrun_command(explicit: str | None) -> str:
    """Return the bgrun console script: --bgrun, else the one beside this Python, else PATH's."""
    if explicit:
        return explicit
    beside = Path(sys.executable).with_name("bgrun")
    if beside.is_file():
        return str(beside)
    found = shutil.which("bgrun")
    if not found:
        sys.exit("bench: bgrun not found; install it with 'pip install -e pyserver' or pass --bgrun PATH")
    return found


def script_interpreter(path: str) -> str | None:
    """Return the interpreter named on a script's #! line, or None for a binary or shell shim."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline().decode("utf-8", "replace").strip()
    except OSError:
        return None
    return first[2:].strip() if first.startswith("#!") else None


def ensure_tools(install: bool) -> dict[str, str | None]:
    """Find tsp and nq, installing the Debian packages first when `install` is true."""
    missing = [tool for tool in ("tsp", "nq") if shutil.which(tool) is None]
    if missing and install:
        packages = ["task-spooler", "nq"]
        log(f"installing {' '.join(packages)} with apt-get")
        command = ["apt-get", "-y", "install", *packages]
        if subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr).returncode != 0:
            log("apt-get install failed; running apt-get update and trying once more")
            subprocess.run(["apt-get", "update"], stdout=sys.stderr, stderr=sys.stderr)
            subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr)
    found = {tool: shutil.which(tool) for tool in ("tsp", "nq")}
    for tool, path in found.items():
        if path is None:
            log(f"{tool} not found: its rows are skipped (pass --install to install it with apt-get)")
    return found


def marked_processes(marker: str) -> list[psutil.Process]:
    """Return the live processes whose environment carries this run's marker token."""
    found = []
    own = os.getpid()
    for process in psutil.process_iter(["name", "ppid"]):
        if process.pid == own:
            continue
        try:
            if process.environ().get(MARKER_VAR) == marker and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def terminate_pids(processes: list[psutil.Process], timeout: float = 5.0) -> None:
    """Send SIGTERM to each process by PID, then SIGKILL to those still alive after `timeout` seconds."""
    for process in processes:
        try:
            process.send_signal(signal.SIGTERM)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        try:
            process.send_signal(signal.SIGKILL)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def wait_until_gone(marker: str, timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    remaining = marked_processes(marker)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = marked_processes(marker)
    return remaining


def describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:120]}"
    except psutil.Error:
        return f"{process.pid} (exited)"


def memory_of(process: psutil.Process) -> dict[str, int]:
    info = process.memory_full_info()
    return {"uss": info.uss, "pss": info.pss, "rss": info.rss}


class TaskSpooler:
    """A private tsp server whose socket and output files are in `folder`."""

    def __init__(self, tsp: str, folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.tsp = tsp
        self.socket = str(folder / "tsp.socket")
        self.env = dict(env, TS_SOCKET=self.socket, TMPDIR=str(folder))
        self.server: psutil.Process | None = None

    def run(self, *args: str) -> str:
        result = subprocess.run([self.tsp, *args], env=self.env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=30)
        return result.stdout

    def start(self) -> None:
        """Start the server (tsp starts it on the first call) and remember its PID."""
        self.run("-S", "1")
        deadline = time.monotonic() + 5
        while self.server is None and time.monotonic() < deadline:
            self.server = self.find_server()
            time.sleep(0.01)
        if self.server is None:
            log(f"tsp server for {self.socket} not found; it is stopped with 'tsp -K' only")

    def find_server(self) -> psutil.Process | None:
        for process in psutil.process_iter(["name"]):
            if process.info["name"] != "tsp":
                continue
            try:
                for connection in process.net_connections(kind="unix"):
                    if connection.laddr == self.socket:
                        return process
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return None

    def stop(self) -> None:
        """Stop the server with 'tsp -K', then by PID if it is still alive after 5 s."""
        subprocess.run([self.tsp, "-K"], env=self.env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if self.server is None:
            return
        try:
            self.server.wait(timeout=5)
        except psutil.TimeoutExpired:
            log(f"tsp server {self.server.pid} still running after 'tsp -K'; sending SIGTERM by PID")
            terminate_pids([self.server])
        except psutil.NoSuchProcess:
            pass


# ---------------------------------------------------------------------------------------------
# 1. Return time and whole-process time


def time_launch(argv: list[str], env: dict[str, str], output: Path, cwd: Path,
                timeout: float = 30.0) -> dict[str, Any]:
    """Run a launcher and return its return time and the time until `output` contains "x\\n".

    A thread polls `output` every POLL_SECONDS while the main thread waits for the launcher, so
    a job that finishes before its launcher returns is timed too.
    """
    seen: dict[str, float] = {}
    done = threading.Event()

    def poll_output() -> None:
        while not done.is_set():
            try:
                if output.stat().st_size >= 2:
                    seen["at"] = time.perf_counter()
                    return
            except FileNotFoundError:
                pass
            time.sleep(POLL_SECONDS)

    stdout_path = output.with_suffix(".stdout")
    with open(stdout_path, "wb") as stdout, open(output.with_suffix(".stderr"), "wb") as stderr:
        poller = threading.Thread(target=poll_output, daemon=True)
        poller.start()
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        status = process.wait()
        returned = time.perf_counter()
        poller.join(timeout)
        done.set()
    result = {"return": returned - started, "status": status, "started": started,
              "stdout": stdout_path.read_text(errors="replace")}
    result["whole"] = seen["at"] - started if "at" in seen else None
    return result


def wait_for_footer(log_path: str, timeout: float = 30.0) -> float | None:
    """Wait until a bgrun log ends with its footer's sync line, and return perf_counter() at that moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(log_path, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - 4096))
                if FOOTER_SYNC in handle.read():
                    return time.perf_counter()
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    return None


def launchers(tools: dict[str, str | None], bgrun: str, folder: Path, env: dict[str, str],
              tsp: TaskSpooler | None) -> list[dict[str, Any]]:
    """Return the launchers to time, each a label and a function that maps an output file to argv and env."""
    bgrun_env = dict(env, BGRUN_LOG_ROOT=str(folder / "bgrun-logs"))

    def job(output: Path) -> str:
        return f"echo x > {shlex.quote(str(output))}"

    rows = [
        {"label": "foreground `sh -c 'echo x > F'` (reference, not detached)",
         "build": lambda out: (["sh", "-c", job(out)], env)},
        {"label": "`bgrun run --delay 0 -- sh -c …` (console script)", "bgrun": True,
         "build": lambda out: ([bgrun, "run", "--delay", "0", "--json", "--", "sh", "-c", job(out)], bgrun_env)},
    ]
    on_path = shutil.which("bgrun")
    if on_path and os.path.realpath(on_path) != os.path.realpath(bgrun):
        rows.append({"label": f"`bgrun run …` through PATH ({on_path})", "bgrun": True,
                     "build": lambda out: ([on_path, "run", "--delay", "0", "--json", "--", "sh", "-c", job(out)], bgrun_env)})
    rows.append({"label": "`setsid nohup sh -c '…' > log 2>&1 &` from sh",
                 "build": lambda out: (["sh", "-c", f"setsid nohup sh -c {shlex.quote(job(out))} "
                                                    f"> {shlex.quote(str(out))}.log 2>&1 &"], env)})
    if tsp is not None:
        rows.append({"label": "`tsp sh -c '…'` (task-spooler, server already running)",
                     "build": lambda out: ([tsp.tsp, "sh", "-c", job(out)], tsp.env)})
    if tools.get("nq"):
        nq_env = dict(env, NQDIR=str(folder / "nq"))
        (folder / "nq").mkdir(exist_ok=True)
        rows.append({"label": "`nq sh -c '…'`", "build": lambda out: ([tools["nq"], "sh", "-c", job(out)], nq_env)})
    return rows


def measure_return_times(runs: int, tools: dict[str, str | None], bgrun: str, folder: Path,
                         env: dict[str, str]) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    tsp = None
    if tools.get("tsp"):
        tsp = TaskSpooler(tools["tsp"], folder / "tsp", env)
        tsp.start()
    try:
        rows = launchers(tools, bgrun, folder, env, tsp)
        samples: dict[str, dict[str, list[float]]] = {
            row["label"]: {"return": [], "whole": [], "footer": [], "failures": []} for row in rows}
        for run in range(runs):
            for index, row in enumerate(rows):
                output = folder / f"out-{run}-{index}"
                argv, row_env = row["build"](output)
                result = time_launch(argv, row_env, output, folder)
                sample = samples[row["label"]]
                if result["status"] != 0 or result["whole"] is None:
                    sample["failures"].append(f"run {run}: status {result['status']}, output seen: {result['whole'] is not None}")
                    continue
                sample["return"].append(result["return"])
                sample["whole"].append(result["whole"])
                if row.get("bgrun"):
                    footer = wait_for_footer(json.loads(result["stdout"])["log_path"])
                    if footer is not None:
                        sample["footer"].append(footer - result["started"])
                time.sleep(0.05)
            log(f"return times: run {run + 1}/{runs} done")
    finally:
        if tsp is not None:
            tsp.stop()
    table = []
    for row in rows:
        sample = samples[row["label"]]
        entry = {"launcher": row["label"], "return_seconds": summarize(sample["return"]),
                 "whole_seconds": summarize(sample["whole"]), "failures": sample["failures"]}
        if row.get("bgrun"):
            entry["footer_seconds"] = summarize(sample["footer"])
        table.append(entry)
    return table


# ---------------------------------------------------------------------------------------------
# 2. Timer accuracy


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def times_from_log(log_path: str) -> tuple[float | None, float | None]:
    """Return the supervisor's "attempt 1 … started" stamp and the time `date +%s.%N` wrote.

    The stamp is taken by the supervisor just before it forks the job, with millisecond resolution.
    """
    stamp = real_start = None
    for line in Path(log_path).read_text(errors="replace").splitlines():
        match = re.match(r"\[bgrun\] attempt 1 of \d+ started: (\S+) pid", line)
        if match and stamp is None:
            stamp = parse_iso(match.group(1))
        elif re.fullmatch(r"\d+\.\d+", line.strip()) and real_start is None:
            real_start = float(line.strip())
    return stamp, real_start


def measure_timer(runs: int, delays: list[float], bgrun: str, folder: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    bgrun_env = dict(env, BGRUN_LOG_ROOT=str(folder / "bgrun-logs"))
    metrics = ("late_vs_scheduled_for", "late_vs_invocation_plus_delay", "scheduled_for_to_supervisor_stamp",
               "supervisor_stamp_to_real_start")
    samples = {delay: {metric: [] for metric in metrics} for delay in delays}
    failures: dict[float, list[str]] = {delay: [] for delay in delays}
    for run in range(runs):
        for delay in delays:
            invoked = time.time()
            result = subprocess.run([bgrun, "run", "--delay", repr(delay), "--json", "--", "date", "+%s.%N"],
                                    env=bgrun_env, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=60)
            if result.returncode != 0:
                failures[delay].append(f"run {run}: bgrun exited {result.returncode}: {result.stderr.strip()}")
                continue
            job = json.loads(result.stdout)
            if wait_for_footer(job["log_path"], timeout=delay + 30) is None:
                failures[delay].append(f"run {run}: job {job['id']} wrote no footer within {delay + 30:g} s")
                continue
            stamp, real_start = times_from_log(job["log_path"])
            if real_start is None:
                failures[delay].append(f"run {run}: no time found in {job['log_path']}")
                continue
            scheduled_for = parse_iso(job["scheduled_for"])
            sample = samples[delay]
            sample["late_vs_scheduled_for"].append(real_start - scheduled_for)
            sample["late_vs_invocation_plus_delay"].append(real_start - (invoked + delay))
            if stamp is not None:
                sample["scheduled_for_to_supervisor_stamp"].append(stamp - scheduled_for)
                sample["supervisor_stamp_to_real_start"].append(real_start - stamp)
            time.sleep(0.05)
        log(f"timer: run {run + 1}/{runs} done")
    table = []
    for delay in delays:
        row = {"delay_seconds": delay}
        row.update({f"{metric}_seconds": summarize(values) for metric, values in samples[delay].items()})
        late = row["late_vs_scheduled_for_seconds"]
        row["goal_met"] = bool(late["n"]) and max(abs(late["min"]), abs(late["max"])) <= TIMER_GOAL_SECONDS
        row["failures"] = failures[delay]
        table.append(row)
    return table


# ---------------------------------------------------------------------------------------------
# 3. Private memory per running job


def wait_for(condition, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def processes_named(processes: list[psutil.Process], name: str) -> dict[int, psutil.Process]:
    """Return the processes called `name` among `processes`, by PID."""
    found = {}
    for process in processes:
        try:
            if process.name() == name:
                found[process.pid] = process
        except psutil.NoSuchProcess:
            continue
    return found


def measure_bgrun_memory(jobs: int, sleep_seconds: int, bgrun: str, folder: Path, env: dict[str, str],
                         marker: str) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    bgrun_env = dict(env, BGRUN_LOG_ROOT=str(folder / "bgrun-logs"))
    records = []
    try:
        for _ in range(jobs):
            result = subprocess.run([bgrun, "run", "--delay", "0", "--json", "--", "sleep", str(sleep_seconds)],
                                    env=bgrun_env, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=60)
            result.check_returncode()
            records.append(json.loads(result.stdout))

        def all_running() -> bool:
            listing = subprocess.run([bgrun, "list", "--json"], env=bgrun_env, cwd=folder, capture_output=True,
                                     text=True, timeout=60)
            states = {job["id"]: job for job in json.loads(listing.stdout)}
            for record in records:
                record.update(states.get(record["id"], {}))
            return all(record["state"] == "running" for record in records)

        if not wait_for(all_running, timeout=30, interval=0.5):
            log("memory: not every bgrun job reached state running within 30 s")
        supervisors = {record["id"]: psutil.Process(record["supervisor_pid"]) for record in records}

        def hooks_finished() -> bool:
            # While a job runs, its supervisor's only child is the job once the `started` hook exits.
            try:
                return all(len(process.children()) == 1 for process in supervisors.values())
            except psutil.NoSuchProcess:
                return True

        if not wait_for(hooks_finished, timeout=30):
            log("memory: some supervisors still have a hook running after 30 s")
        time.sleep(1.0)
        per_job, job_uss, other = measure_bgrun_processes(records, marker)
        breakdown = private_memory_by_mapping(next(iter(supervisors.values())))
    finally:
        stop_bgrun_jobs(records, bgrun, bgrun_env, folder)
    uss = [entry["uss"] for entry in per_job]
    return {"jobs": len(records), "per_job_bytes": summarize(uss), "per_job": per_job,
            "job_process_uss_bytes": summarize(job_uss), "unattributed_bgrun_processes": other,
            "supervisor_private_bytes_by_mapping": breakdown,
            "goal_met": bool(uss) and max(uss) <= USS_GOAL_BYTES}


def private_memory_by_mapping(process: psutil.Process) -> dict[str, int]:
    """Return one process's private memory (clean + dirty) per mapped file, largest first."""
    totals: dict[str, int] = {}
    try:
        for mapping in process.memory_maps(grouped=True):
            name = os.path.basename(mapping.path) if mapping.path.startswith("/") else (mapping.path or "[anon]")
            totals[name] = totals.get(name, 0) + mapping.private_clean + mapping.private_dirty
    except psutil.Error:
        return {}
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def measure_bgrun_processes(records: list[dict[str, Any]], marker: str):
    """Sum the USS of each job's bgrun processes, and return those sums, the jobs' own USS and the unattributed ones."""
    job_pids = {int(record["pid"]) for record in records if record.get("pid")}
    per_job: dict[str, dict[str, Any]] = {
        record["id"]: {"job": record["id"], "uss": 0, "pss": 0, "rss": 0, "processes": []} for record in records}
    by_supervisor = {int(record["supervisor_pid"]): record["id"] for record in records}
    job_uss, other = [], []
    for process in marked_processes(marker):
        try:
            session = os.getsid(process.pid)
            memory = memory_of(process)
            ancestors = [parent.pid for parent in process.parents()]
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
        if session in job_pids:
            if process.pid in job_pids:
                job_uss.append(memory["uss"])
            continue
        owner = next((by_supervisor[pid] for pid in [process.pid, *ancestors] if pid in by_supervisor), None)
        if owner is None:
            other.append({"pid": process.pid, "cmdline": " ".join(process.cmdline())[:200], **memory})
            continue
        entry = per_job[owner]
        for key in ("uss", "pss", "rss"):
            entry[key] += memory[key]
        entry["processes"].append({"pid": process.pid, "name": process.name(), **memory})
    return list(per_job.values()), job_uss, other


def stop_bgrun_jobs(records: list[dict[str, Any]], bgrun: str, env: dict[str, str], folder: Path) -> None:
    for record in records:
        subprocess.run([bgrun, "stop", record["id"], "--grace", "2"], env=env, cwd=folder,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr, timeout=60)


def measure_waiter_memory(tool: str, path: str, jobs: int, sleep_seconds: int, folder: Path,
                          env: dict[str, str], marker: str) -> dict[str, Any]:
    """Measure the per-job process of tsp (the client that waits) or nq (the status collector).

    tsp runs the jobs side by side with `tsp -S JOBS`. nq gets one NQDIR per job, because jobs in
    one NQDIR run one after another.
    """
    folder.mkdir(parents=True, exist_ok=True)
    spooler = None
    result: dict[str, Any] = {"tool": tool, "jobs": jobs}
    try:
        if tool == "tsp":
            spooler = TaskSpooler(path, folder, env)
            spooler.start()
            spooler.run("-S", str(jobs))
            for _ in range(jobs):
                spooler.run("sleep", str(sleep_seconds))
        else:
            for index in range(jobs):
                queue = folder / f"nq-{index}"
                queue.mkdir()
                subprocess.run([path, "sleep", str(sleep_seconds)], env=dict(env, NQDIR=str(queue)),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True, timeout=30)

        def sleeps() -> dict[int, psutil.Process]:
            return processes_named(marked_processes(marker), "sleep")

        wait_for(lambda: len(sleeps()) >= jobs, timeout=30)
        time.sleep(1.0)
        waiters, job_uss = [], []
        for job in sleeps().values():
            try:
                parent = job.parent()
                job_uss.append(memory_of(job)["uss"])
                if parent is not None and parent.name() == tool:
                    waiters.append({"pid": parent.pid, **memory_of(parent)})
            except psutil.NoSuchProcess:
                continue
        result.update(per_job_bytes=summarize([w["uss"] for w in waiters]), waiters=waiters,
                      job_process_uss_bytes=summarize(job_uss))
        if spooler is not None and spooler.server is not None:
            result["server"] = memory_of(spooler.server)
    finally:
        # Ending each job by PID lets its waiting process record the exit and exit itself.
        terminate_pids(list(processes_named(marked_processes(marker), "sleep").values()))
        if spooler is not None:
            spooler.stop()
    return result


# ---------------------------------------------------------------------------------------------
# Report


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f}"


def mib(value: float | None) -> str:
    return "–" if value is None else f"{value / MIB:.2f}"


def render_markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"Date: {report['date']}  ",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB memory, "
        f"Linux {machine['kernel']}, Python {machine['python']} (bgrun runs under {report['bgrun_python']})  ",
        f"Load average (1, 5, 15 min): {report['load']['start']} at start, {report['load']['end']} at end",
    ]
    source = report["source"]
    if source["commit"]:
        changed = ", ".join(source["changed"]) if source["changed"] else "none"
        lines[2:2] = [f"Source: commit {source['commit']}; files under pyserver/ changed since then: {changed}  "]
    for section, load in report["load"]["sections"].items():
        lines.append(f"  ({section}: {load['start']} → {load['end']})")
    if report.get("notes"):
        lines += [""] + [f"- {note}" for note in report["notes"]]

    if "return_times" in report:
        lines += ["", f"Return and whole-process time, {report['runs']} runs each, in ms:", "",
                  "| launcher | return median | return p90 | whole median | whole p90 | failures |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for row in report["return_times"]:
            ret, whole = row["return_seconds"], row["whole_seconds"]
            lines.append(f"| {row['launcher']} | {ms(ret['median'])} | {ms(ret['p90'])} | "
                         f"{ms(whole['median'])} | {ms(whole['p90'])} | {len(row['failures'])} |")
            if "footer_seconds" in row:
                footer = row["footer_seconds"]
                lines.append(f"| ↳ same runs, until bgrun wrote the log footer (job recorded as finished) | | | "
                             f"{ms(footer['median'])} | {ms(footer['p90'])} | |")
        lines += ["", "Return time: until the launching command exits. Whole-process time: until the job's "
                      "output file holds its line, polled every 0.5 ms from the moment the launcher is started."]

    if "timer" in report:
        lines += ["", f"Timer accuracy, {report['runs']} runs each, in ms (positive = late):", "",
                  "| delay (s) | vs scheduled_for: min | median | p90 | max | vs invocation + delay: median | p90 | max "
                  "| within 50 ms |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for row in report["timer"]:
            late, invoked = row["late_vs_scheduled_for_seconds"], row["late_vs_invocation_plus_delay_seconds"]
            lines.append(f"| {row['delay_seconds']:g} | {ms(late['min'])} | {ms(late['median'])} | {ms(late['p90'])} | "
                         f"{ms(late['max'])} | {ms(invoked['median'])} | {ms(invoked['p90'])} | {ms(invoked['max'])} | "
                         f"{'yes' if row['goal_met'] else 'no'} |")
        lines += ["", "Where the lateness after scheduled_for goes, median (p90) in ms:", "",
                  "| delay (s) | scheduled_for → supervisor's \"attempt started\" stamp | stamp → `date` runs |",
                  "| ---: | ---: | ---: |"]
        for row in report["timer"]:
            before, after = row["scheduled_for_to_supervisor_stamp_seconds"], row["supervisor_stamp_to_real_start_seconds"]
            lines.append(f"| {row['delay_seconds']:g} | {ms(before['median'])} ({ms(before['p90'])}) | "
                         f"{ms(after['median'])} ({ms(after['p90'])}) |")
        lines += ["", "The real start is the time that `date +%s.%N` prints as the job. bgrun stores "
                      "scheduled_for and the stamp truncated to whole milliseconds, so those columns can be off by "
                      "up to 1 ms. The invocation time is taken by the bench just before it starts the `bgrun` "
                      "process, so those columns include the CLI's own start-up."]

    if "memory" in report:
        memory = report["memory"]
        lines += ["", f"Private memory (USS) per running `sleep` job, {report['jobs']} jobs side by side, in MiB "
                      f"(the job's own process excluded):", "",
                  "| tool | process measured per job | jobs measured | mean | max | the `sleep` job itself (mean) |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
        for tool, what in (("bgrun", "supervisor (`supervise.py` under `python -S -I`) and any hook it runs"),
                           ("tsp", "client that forked the job and waits for it"),
                           ("nq", "parent that waits to write the exit status")):
            if tool in memory:
                per_job, job = memory[tool]["per_job_bytes"], memory[tool]["job_process_uss_bytes"]
                lines.append(f"| {tool} | {what} | {per_job['n']} | {mib(per_job['mean'])} | {mib(per_job['max'])} | "
                             f"{mib(job['mean'])} |")
        lines.append("\nUSS counts the pages that only this process maps, so pages of a shared library that "
                     "several identical processes map are not in it; the jobs run side by side for that reason.")
        if "tsp" in memory and "server" in memory["tsp"]:
            lines.append(f"\ntsp's server, shared by all jobs: {mib(memory['tsp']['server']['uss'])} MiB USS.")
        if "bgrun" in memory:
            bgrun = memory["bgrun"]
            largest = list(bgrun["supervisor_private_bytes_by_mapping"].items())[:4]
            if largest:
                lines.append("\nPrivate memory of one bgrun supervisor by mapping, in MiB: "
                             + ", ".join(f"{name} {mib(size)}" for name, size in largest) + ".")
            lines.append(f"\nbgrun goal ≤ 3 MiB per job: {'met' if bgrun['goal_met'] else 'not met'}; "
                         f"other bgrun processes alive beside the jobs: {len(bgrun['unattributed_bgrun_processes'])}.")
    if report.get("leftovers"):
        lines += ["", f"Processes still alive at the end and signalled by PID: {report['leftovers']}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per launcher and per delay (default 20)")
    parser.add_argument("--jobs", type=int, default=20, help="jobs running side by side for the memory test (default 20)")
    parser.add_argument("--delays", default="0,0.5,1,2", help="comma-separated timer delays in seconds (default 0,0.5,1,2)")
    parser.add_argument("--sleep", type=int, default=60, help="seconds each memory-test job sleeps (default 60)")
    parser.add_argument("--sections", default="return,timer,memory",
                        help="comma-separated sections to run: return, timer, memory (default all)")
    parser.add_argument("--install", action="store_true",
                        help="install missing tools with 'apt-get -y install task-spooler nq' (needs root)")
    parser.add_argument("--bgrun", help="path of the bgrun command (default: the one beside this Python, else PATH's)")
    parser.add_argument("--max-load", type=float, default=1.0,
                        help="wait for the 1-minute load average to fall to this before starting (default 1.0)")
    parser.add_argument("--quiet-wait", type=float, default=120,
                        help="seconds to wait at most for that load (default 120, and 0 starts at once)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary folder with all logs")
    return parser.parse_args(argv)


def run_sections(args: argparse.Namespace, report: dict[str, Any], folder: Path, env: dict[str, str],
                 marker: str, bgrun: str, tools: dict[str, str | None]) -> None:
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    for section in sections:
        load = {"start": load_average()}
        if section == "return":
            report["return_times"] = measure_return_times(args.runs, tools, bgrun, folder / "return", env)
        elif section == "timer":
            delays = [float(value) for value in args.delays.split(",")]
            report["timer"] = measure_timer(args.runs, delays, bgrun, folder / "timer", env)
        elif section == "memory":
            memory = {"bgrun": measure_bgrun_memory(args.jobs, args.sleep, bgrun, folder / "memory-bgrun", env, marker)}
            for tool in ("tsp", "nq"):
                if tools.get(tool):
                    memory[tool] = measure_waiter_memory(tool, tools[tool], args.jobs, args.sleep,
                                                         folder / f"memory-{tool}", env, marker)
            report["memory"] = memory
        else:
            sys.exit(f"bench: unknown section {section!r}; expected return, timer or memory")
        load["end"] = load_average()
        report["load"]["sections"][section] = load


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    marker = uuid.uuid4().hex
    bgrun = bgrun_command(args.bgrun)
    tools = ensure_tools(args.install)
    quiet = wait_for_quiet(args.max_load, args.quiet_wait)
    report: dict[str, Any] = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(["python3", *sys.argv]),
        "machine": machine_info(), "source": source_revision(), "bgrun": bgrun, "bgrun_python": script_interpreter(bgrun) or "unknown",
        "runs": args.runs, "jobs": args.jobs, "tools": tools,
        "load": {"start": load_average(), "quiet_wait": quiet, "sections": {}}, "notes": [],
    }
    if quiet["after_wait"][0] > args.max_load:
        report["notes"].append(f"the 1-minute load average was still {quiet['after_wait'][0]} after waiting "
                               f"{quiet['waited_seconds']} s; the numbers may be slower than on a quiet machine")
    for tool, path in tools.items():
        if path is None:
            report["notes"].append(f"{tool} was not installed, so its rows are missing")

    folder = Path(tempfile.mkdtemp(prefix="bgrun-bench-"))
    env = dict(os.environ, **{MARKER_VAR: marker})
    try:
        run_sections(args, report, folder, env, marker, bgrun, tools)
    finally:
        leftovers = wait_until_gone(marker, timeout=15)
        if leftovers:
            report["leftovers"] = [describe(process) for process in leftovers]
            log(f"signalling processes still alive by PID: {report['leftovers']}")
            terminate_pids(leftovers)
        report["load"]["end"] = load_average()
        if args.keep_temp:
            log(f"logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    text = render_markdown(report)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
