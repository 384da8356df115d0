"""Benchmark of the bgrun language server through a real client, printed as Markdown.

Measures, in a scratch folder that is deleted afterwards:

1. request-to-response latency of bgrun/run (a real job, whose supervisor really starts),
   and where that time goes inside the engine (measured in this process);
2. latency of bgrun/list with the given number of jobs in the store;
3. time from a record write by another process (here, this one) to its bgrun/jobChanged;
4. CPU time of the idle server while the given number of jobs run (`sleep`), as a percentage of
   one core, with the notifications it sent meanwhile.

Usage: python bench/bench_server.py [--runs 50] [--jobs 1000] [--running 50] [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import psutil
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bgrun import schema
from bgrun.engine import spawn
from bgrun.server.converter import make_protocol_converter
from bgrun.store import Store

TIMEOUT = 120.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def milliseconds(values: list[float]) -> str:
    return f"{percentile(values, 0.5) * 1000:.1f} ms / {percentile(values, 0.99) * 1000:.1f} ms"


def machine_info(folder: Path) -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from bgrun.store.database import filesystem_type

    return [("CPU", f"{cpu}, {psutil.cpu_count()} logical cores"),
            ("memory", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"),
            ("OS", platform.platform()), ("Python", platform.python_version()),
            ("scratch filesystem", f"{filesystem_type(folder) or 'unknown'} ({folder})"),
            ("load average at start", " ".join(f"{value:.2f}" for value in os.getloadavg()))]


class Bench:
    def __init__(self, folder: Path):
        self.folder = folder
        self.log_root = folder / "logs"
        self.log_root.mkdir(parents=True)
        self.client = LanguageClient("bgrun-bench", "0", converter_factory=make_protocol_converter)
        self.changes: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

        @self.client.feature("bgrun/jobChanged")
        def record(params: dict[str, Any]) -> None:
            self.changes.append(params)
            self.arrived.set()

        self.server: psutil.Process | None = None

    async def start(self) -> None:
        env = dict(os.environ, BGRUN_LOG_ROOT=str(self.log_root))
        await self.client.start_io(sys.executable, "-m", "bgrun.server", "--log-level", "WARNING",
                                   env=env, cwd=str(self.folder))
        self.server = psutil.Process(self.client._server.pid)
        uri = self.folder.as_uri()
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name="bench")]))
        self.client.initialized(types.InitializedParams())

    async def request(self, method: str, params: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        result = await asyncio.wait_for(self.client.protocol.send_request_async(method, params), TIMEOUT)
        return time.perf_counter() - started, result

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until `condition()` holds, checking after each notification."""
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out waiting for {what}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), min(remaining, 1.0))
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        await asyncio.wait_for(self.client.shutdown_async(None), TIMEOUT)
        self.client.exit(None)
        await asyncio.wait_for(self.client.stop(), TIMEOUT)


def engine_breakdown(folder: Path, runs: int) -> list[tuple[str, float]]:
    """Time each step of spawn.submit in this process, and return (step, median seconds)."""
    timings: dict[str, list[float]] = {}

    def timed(name: str, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timings.setdefault(name, []).append(time.perf_counter() - started)
        return wrapper

    originals = (spawn.plan_job, spawn.start_supervisor, Store.create, Store.update, spawn.submit)
    spawn.plan_job = timed("validate and resolve settings (plan_job)", spawn.plan_job)
    spawn.start_supervisor = timed("start the detached supervisor, wait for its PID", spawn.start_supervisor)
    Store.create = timed("record the job: SQLite row + fsynced record file (Store.create)", Store.create)
    Store.update = timed("record the supervisor PID (Store.update)", Store.update)
    submit = timed("whole spawn.submit", spawn.submit)
    root = folder / "breakdown"
    try:
        for _ in range(runs):
            job = submit(spawn.RunRequest(command="true", delay=3600, log_root=str(root), cwd=str(folder)))
            psutil.Process(job["supervisor_pid"]).kill()
    finally:
        spawn.plan_job, spawn.start_supervisor, Store.create, Store.update, spawn.submit = originals
    return [(name, statistics.median(values)) for name, values in timings.items()]


def fill_store(log_root: Path, count: int) -> None:
    """Store `count` finished jobs directly, as a long-used log root would hold them."""
    store = Store(log_root)
    for number in range(count):
        store.create({"name": f"job{number}", "category": "model_dev", "command": f"echo {number}",
                      "cwd": str(log_root.parent), "log_root": str(log_root), "state": schema.SUCCEEDED,
                      "exit_code": 0, "log_path": str(log_root / "model_dev" / f"job{number}.log")})
    store.close()


async def measure(args: argparse.Namespace, folder: Path) -> list[tuple[str, str, str]]:
    bench = Bench(folder)
    rows = []
    await bench.start()
    try:
        run_times, jobs = [], []
        for _ in range(args.runs):
            elapsed, job = await bench.request("bgrun/run", {"command": "true", "delay": 3600})
            run_times.append(elapsed)
            jobs.append(job)
        rows.append((f"bgrun/run, p50 / p99 ({args.runs} requests)", milliseconds(run_times), "p50 ≤ 5 ms"))
        for job in jobs:
            await bench.request("bgrun/stop", {"id": job["id"]})

        await asyncio.to_thread(fill_store, bench.log_root, args.jobs)
        total = len(jobs) + args.jobs
        for params, label in (({}, f"bgrun/list, all {total} jobs"), ({"limit": 50}, f"bgrun/list, limit 50 of {total}")):
            times = [(await bench.request("bgrun/list", params))[0] for _ in range(args.list_requests)]
            rows.append((f"{label}, p50 / p99 ({args.list_requests} requests)", milliseconds(times), ""))

        push_times = await measure_push(bench, jobs[0]["id"], args.list_requests)
        rows.append((f"record write → bgrun/jobChanged, p50 / p99 ({len(push_times)} writes)",
                     milliseconds(push_times), "≤ 200 ms"))

        running = [(await bench.request("bgrun/run", {"command": "sleep 600", "delay": 0}))[1]["id"]
                   for _ in range(args.running)]
        await bench.wait_until(lambda: len({c["id"] for c in bench.changes if c["state"] == "running"} & set(running))
                               == len(running), "every job to run")
        await asyncio.sleep(args.settle_seconds)
        notifications_before = len(bench.changes)
        cpu_before = sum(bench.server.cpu_times()[:2])
        await asyncio.sleep(args.idle_seconds)
        cpu = sum(bench.server.cpu_times()[:2]) - cpu_before
        sent = len(bench.changes) - notifications_before
        rows.append((f"idle server CPU, {args.running} running jobs, {total} stored ({args.idle_seconds:g} s)",
                     f"{100 * cpu / args.idle_seconds:.2f} % of one core", "≤ 1 %"))
        rows.append(("notifications sent while idle", str(sent), "0"))
        await asyncio.gather(*(bench.request("bgrun/stop", {"id": job_id, "grace": 5}) for job_id in running))
    finally:
        await bench.close()
    return rows


async def measure_push(bench: Bench, job_id: str, count: int) -> list[float]:
    """Return the seconds from the start of each store write to the arrival of its notification."""
    store = Store(bench.log_root)
    times = []
    try:
        for number in range(count):
            started = time.perf_counter()
            job = store.update(job_id, lambda record: record.update(reason=f"benchmark write {number}"))
            await bench.wait_until(lambda: any(change["id"] == job_id and change["revision"] == job["revision"]
                                               for change in bench.changes[-5:]), "the notification")
            times.append(time.perf_counter() - started)
    finally:
        store.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="bgrun/run requests to time (default 50)")
    parser.add_argument("--jobs", type=int, default=1000, help="finished jobs in the store for bgrun/list (default 1000)")
    parser.add_argument("--list-requests", type=int, default=50, help="bgrun/list requests to time (default 50)")
    parser.add_argument("--running", type=int, default=50, help="running jobs during the idle measurement (default 50)")
    parser.add_argument("--settle-seconds", type=float, default=5.0, help="wait after the jobs start (default 5)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle measurement window (default 30)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bgrun-bench-"))
    try:
        info = machine_info(folder)
        breakdown = engine_breakdown(folder, min(args.runs, 20))
        rows = asyncio.run(measure(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print("## bgrun language server benchmark\n")
    print("| machine | |\n| --- | --- |")
    for name, value in info:
        print(f"| {name} | {value} |")
    print("\n| measurement | result | goal |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nWhere bgrun/run spends its time (engine steps, median, measured in the benchmark process):\n")
    print("| step | median |\n| --- | --- |")
    for name, seconds in breakdown:
        print(f"| {name} | {seconds * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
