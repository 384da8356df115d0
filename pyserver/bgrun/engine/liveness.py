"""Whether a recorded process is still the one bgrun started.

A PID alone is not enough, because the kernel reuses PIDs: a process counts as alive only when
its PID exists, it is not a zombie, and its start time (psutil `create_time`) equals the one
recorded at launch.
"""

from __future__ import annotations

import psutil

# psutil derives create_time from the boot time and clock ticks, which are stable within a boot.
# The same process therefore agrees far more closely than this tolerance. A reused PID differs by
# the time the PID space took to wrap around.
CREATE_TIME_TOLERANCE = 0.05


def process_if_alive(pid: int | None, create_time: float | None) -> psutil.Process | None:
    """Return the process when `pid` still runs the process started at `create_time`."""
    if not pid or create_time is None:
        return None
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - create_time) > CREATE_TIME_TOLERANCE:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def is_alive(pid: int | None, create_time: float | None) -> bool:
    return process_if_alive(pid, create_time) is not None


def pid_reused(pid: int | None, create_time: float | None) -> psutil.Process | None:
    """Return the process that now holds `pid` when it is not the one recorded, else None."""
    if not pid or create_time is None:
        return None
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - create_time) > CREATE_TIME_TOLERANCE:
            return process
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        pass
    return None


def create_time_of(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
