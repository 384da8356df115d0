"""Benchmark `bgrun check` over a large store: 100 000 finished jobs by default.

The store is built directly (one transaction for the rows, then one record file and one small
log file per job, as the engine writes them), so building it does not dominate the run. The
script then times the check in-process (`run_check`) and as a whole `bgrun check` process, each
a few times, and prints a Markdown table with the machine it ran on.

Usage: python3 bench/bench_check.py [--jobs N] [--repeat R] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bgrun import logfile, schema
from bgrun.store import Store, database, records
from bgrun.store.check import run_check


def build_store(root: Path, count: int) -> None:
    store = Store(root)
    folder = root / "training"
    folder.mkdir(parents=True, exist_ok=True)
    connection = store.connection()
    stamp = "2026-12-04T12:00:00.000+00:00"
    with database.transaction(connection):
        for number in range(1, count + 1):
            job = schema.new_job(
                id=str(number), state=schema.SUCCEEDED, name=f"train_{number}", category="training",
                command=f"python train.py --seed {number}", cwd=str(root.parent), log_root=str(root),
                log_path=str(folder / f"train_{number}_20261204_120000.log"), created_at=stamp,
                scheduled_for=stamp, started_at=stamp, ended_at=stamp, duration=1.0, exit_code=0,
                attempt=1, revision=3, updated_at=stamp,
            )
            database.put_row(connection, job)
            _write_plain(connection, store.jobs_dir, job)
            log_bytes = logfile.header_bytes(job) + b"training output\n" + logfile.footer_bytes(
                job, "exit code 0", "0") + logfile.format_line("sync", "record written and verified")
            Path(job["log_path"]).write_bytes(log_bytes)
        database.raise_high_water_mark(connection, str(count))
    store.close()


def _write_plain(connection, jobs_dir: Path, job: dict) -> None:
    # The engine's writer also fsyncs each file; skipping that only makes building faster.
    path = records.record_path(jobs_dir, job["id"])
    path.write_text(schema.to_json(job), encoding="utf-8")
    database.set_file_stat(connection, job["id"], path.stat())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="number of job records (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each kind (default 3)")
    parser.add_argument("--keep", help="build the store in this folder and keep it")
    args = parser.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bgrun-bench-check-"))
    root = base / "logs"
    try:
        started = time.perf_counter()
        if not (root / ".bgrun" / "jobs.db").exists():
            build_store(root, args.jobs)
        build_seconds = time.perf_counter() - started

        in_process = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = run_check(root, repair=False, write_clean_report=False)
            in_process.append(time.perf_counter() - started)
            assert report.consistent, report.to_text()[:2000]
            assert report.jobs == args.jobs

        whole = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "bgrun", "--log-root", str(root), "check"],
                                    capture_output=True, text=True)
            whole.append(time.perf_counter() - started)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

        print(f"machine: {machine()}")
        print(f"command: python3 bench/bench_check.py --jobs {args.jobs} --repeat {args.repeat}")
        print(f"load average before: {os.getloadavg()[0]:.2f}; store built in {build_seconds:.1f} s")
        print()
        print("| measurement | runs | median | max | goal |")
        print("|---|---|---|---|---|")
        print(f"| `run_check` over {args.jobs} jobs, in process | {args.repeat} | "
              f"{statistics.median(in_process):.2f} s | {max(in_process):.2f} s | at most 2 s |")
        print(f"| `bgrun check` over {args.jobs} jobs, whole process | {args.repeat} | "
              f"{statistics.median(whole):.2f} s | {max(whole):.2f} s | at most 2 s |")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
