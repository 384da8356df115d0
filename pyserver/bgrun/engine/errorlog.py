"""Error logs: `<log root>/errors/<name>_YYYYMMDD_HHMMSS.log`, one file per reported failure.

Start failures and internal errors of the supervisor and the store land here as well as in the
job's own log (when it has one), so one folder lists everything that went wrong under a log root.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .. import logfile
from ..store.mirror import now_iso

log = logging.getLogger("bgrun.errors")

ERRORS_FOLDER = "errors"


def write_error_log(log_root: str | os.PathLike, name: str, message: str) -> Path | None:
    """Write `message` to a new error log and return its path, or None when that fails too."""
    try:
        path = logfile.create_log_file(Path(log_root) / ERRORS_FOLDER, name or "bgrun")
        text = f"[bgrun] error at {now_iso()}\n{message.rstrip()}\n"
        logfile.append(path, text.encode("utf-8", "replace"), new_line=False)
        return path
    except OSError as error:
        log.error("cannot write error log under %s: %s (message was: %s)", log_root, error, message)
        return None
