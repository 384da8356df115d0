#!/usr/bin/env python3
"""Benchmark `bgrun run --backend slurm --delay 0` next to plain `sbatch --wrap`.

Two times per submission, printed as a Markdown table:

- submit latency: from starting the submitting command until it exits;
- time to running: from starting the submitting command until `squeue` reports the job RUNNING,
  polled every 10 ms.

Both submit `sleep 1`, interleaved, N times each (default 10), and each job is waited out before
the next submission so that every job finds a free CPU.

With --begin-delay D (30 or more, so that bgrun uses `--begin`), it also measures timer lateness
of `bgrun run --delay D` and `sbatch --begin=now+D`, one job at a time: the time to running minus
D, from the start of the submitting command. Without --slurm-conf the bench starts its
own cluster with `.ci/slurm/up.sh` in a new folder under /tmp and stops it with `down.sh`. Every
Slurm command runs with SLURM_CONF set.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPTS = REPOSITORY / ".ci" / "slurm"
POLL_SECONDS = 0.010
TIMEOUT_SECONDS = 60.0
# slurmctld starts jobs submitted in its first 3 s only 3 s after it started (.ci/slurm/README.md).
CONTROLLER_WARM_UP_SECONDS = 3.5


def slurm(env: dict[str, str], *argv: str) -> str:
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, check=True, timeout=30).stdout


def wait_until(condition, what: str) -> float:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"timed out after {TIMEOUT_SECONDS:g} s waiting for {what}")


def squeue_state(env: dict[str, str], slurm_id: str) -> str:
    return slurm(env, "squeue", "-h", "-j", slurm_id, "-o", "%T").strip()


def measure(env: dict[str, str], argv: list[str], parse_id) -> tuple[float, float]:
    """Return (submit latency, time to running) in seconds of one submission."""
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    returned = time.monotonic()
    if result.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed: {result.stderr.strip()}")
    slurm_id = parse_id(result.stdout)
    running = wait_until(lambda: squeue_state(env, slurm_id) in ("RUNNING", "COMPLETING", ""),
                         f"Slurm job {slurm_id} to run")
    wait_until(lambda: squeue_state(env, slurm_id) == "", f"Slurm job {slurm_id} to end")
    return returned - started, running - started


def bgrun_id(stdout: str) -> str:
    import json

    return json.loads(stdout)["backend_id"]


def sbatch_id(stdout: str) -> str:
    return stdout.strip().split(";")[0]


def summary(values: list[float]) -> str:
    milliseconds = [value * 1000 for value in values]
    return (f"{min(milliseconds):.0f} | {statistics.median(milliseconds):.0f} | "
            f"{statistics.mean(milliseconds):.0f} | {max(milliseconds):.0f}")


def measure_begin(env: dict[str, str], argv: list[str], parse_id, delay: int) -> float:
    """Return the lateness in seconds of one job due `delay` s after its submitting command starts."""
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed: {result.stderr.strip()}")
    slurm_id = parse_id(result.stdout)
    deadline = time.monotonic() + delay + TIMEOUT_SECONDS + 60
    while squeue_state(env, slurm_id) not in ("RUNNING", "COMPLETING", ""):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for Slurm job {slurm_id} to run")
        time.sleep(POLL_SECONDS)
    lateness = time.monotonic() - started - delay
    wait_until(lambda: squeue_state(env, slurm_id) == "", f"Slurm job {slurm_id} to end")
    return lateness


def run(count: int, env: dict[str, str], work: Path, begin_delay: int = 0) -> str:
    bgrun = [sys.executable, "-m", "bgrun", "--log-root", str(work / "logs"), "run", "--backend", "slurm",
             "--delay", "0", "--json", "--", "sleep 1"]
    sbatch = ["sbatch", "--parsable", f"--chdir={work}", f"--output={work}/sbatch-%j.log", "--wrap", "sleep 1"]
    # One untimed job of each kind first, so the controller is past its first scheduling pass and
    # the Python modules are in the page cache.
    measure(env, sbatch, sbatch_id)
    measure(env, bgrun, bgrun_id)
    results: dict[str, list[tuple[float, float]]] = {"bgrun": [], "sbatch": []}
    for _ in range(count):
        results["sbatch"].append(measure(env, sbatch, sbatch_id))
        results["bgrun"].append(measure(env, bgrun, bgrun_id))

    version = slurm(env, "sbatch", "--version").strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {version}, single-node cluster from .ci/slurm/up.sh.",
        f"Command: `{shlex.join([sys.executable, *sys.argv])}`, N={count} per row, milliseconds.",
        "",
        "| command | measure | min | median | mean | max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    labels = {"bgrun": "`bgrun run --backend slurm --delay 0 -- 'sleep 1'`", "sbatch": "`sbatch --parsable --wrap 'sleep 1'`"}
    for name in ("sbatch", "bgrun"):
        submit_times = [submit for submit, _ in results[name]]
        running_times = [running for _, running in results[name]]
        lines.append(f"| {labels[name]} | submit latency | {summary(submit_times)} |")
        lines.append(f"| {labels[name]} | time to running | {summary(running_times)} |")
    if begin_delay:
        # One job at a time: bgrun's release makes slurmctld schedule every due job, a plain one too.
        bgrun_begin = bgrun[:bgrun.index("--delay") + 1] + [str(begin_delay)] + bgrun[bgrun.index("--delay") + 2:]
        sbatch_begin = sbatch[:2] + [f"--begin=now+{begin_delay}"] + sbatch[2:]
        late: dict[str, list[float]] = {"bgrun": [], "sbatch": []}
        for _ in range(count):
            late["sbatch"].append(measure_begin(env, sbatch_begin, sbatch_id, begin_delay))
            late["bgrun"].append(measure_begin(env, bgrun_begin, bgrun_id, begin_delay))
        lines.append(f"| `sbatch --begin=now+{begin_delay}` | lateness | {summary(late['sbatch'])} |")
        lines.append(f"| `bgrun run --backend slurm --delay {begin_delay}` | lateness | {summary(late['bgrun'])} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=10, help="submissions per command (default 10)")
    parser.add_argument("--begin-delay", type=int, default=0,
                        help="also measure timer lateness of jobs due in this many seconds, 30 or more (default: skip)")
    parser.add_argument("--slurm-conf", help="slurm.conf of a running cluster (default: start one with .ci/slurm/up.sh)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-slurm.", dir="/tmp"))
    state = None
    if args.slurm_conf:
        slurm_conf = args.slurm_conf
    else:
        state = Path(tempfile.mkdtemp(prefix="slurm-bench.", dir="/tmp"))
        state.chmod(0o755)
        subprocess.run([str(SCRIPTS / "up.sh"), str(state)], check=True, stdout=subprocess.DEVNULL, timeout=300)
        slurm_conf = str(state / "slurm.conf")
        time.sleep(CONTROLLER_WARM_UP_SECONDS)
    env = {**os.environ, "SLURM_CONF": slurm_conf,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY / "pyserver"), os.environ.get("PYTHONPATH")]))}
    try:
        print(run(args.count, env, work, args.begin_delay))
    finally:
        if state is not None:
            subprocess.run([str(SCRIPTS / "down.sh"), str(state)], check=True, stdout=subprocess.DEVNULL, timeout=300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
