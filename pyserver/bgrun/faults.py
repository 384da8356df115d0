"""Fault injection for crash tests.

When `BGRUN_FAULT_POINT` names a point that the code reaches, the process kills itself with
SIGKILL there, so tests can crash a writer between the database write and the record file write.
The launcher removes the variable from every job's environment.
"""

import os
import signal

ENV_VAR = "BGRUN_FAULT_POINT"


def reach(point: str) -> None:
    """Kill this process at once if the fault point `point` is armed."""
    if os.environ.get(ENV_VAR) == point:
        os.kill(os.getpid(), signal.SIGKILL)
