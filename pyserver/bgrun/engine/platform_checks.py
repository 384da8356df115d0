"""Checks of the host that can make detached jobs die: systemd-logind's KillUserProcesses."""

from __future__ import annotations

import getpass
import glob
import logging
import os
import re
from pathlib import Path

log = logging.getLogger("bgrun.platform")

LOGIND_CONFIGS = ["/etc/systemd/logind.conf", *sorted(glob.glob("/etc/systemd/logind.conf.d/*.conf"))]
WARNED_MARKER = Path(os.path.expanduser("~/.cache/bgrun/linger-warning-shown"))


def logind_kills_user_processes() -> bool:
    """Return whether logind is set to kill a user's processes at logout (the last setting wins)."""
    setting = False
    for path in LOGIND_CONFIGS:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in re.finditer(r"^\s*KillUserProcesses\s*=\s*(\S+)", text, re.MULTILINE):
            setting = match.group(1).lower() in ("yes", "true", "1", "on")
    return setting


def linger_enabled(user: str) -> bool:
    return Path("/var/lib/systemd/linger", user).exists()


def linger_warning() -> str | None:
    """Return the logout warning once per user when it applies, else None."""
    if not os.path.isdir("/run/systemd/system") or not logind_kills_user_processes():
        return None
    user = getpass.getuser()
    if user == "root" or linger_enabled(user) or WARNED_MARKER.exists():
        return None
    try:
        WARNED_MARKER.parent.mkdir(parents=True, exist_ok=True)
        WARNED_MARKER.touch()
    except OSError:
        pass
    return (
        "warning: systemd-logind on this host kills your processes when you log out "
        "(KillUserProcesses=yes), background jobs included; run 'loginctl enable-linger' once "
        "to keep them running"
    )
