"""The log file contract: its name, its header and its footer.

Name: `<log root>/<category>/<name>_YYYYMMDD_HHMMSS.log`, in local time of submission. When that
file exists, `_2`, `_3`, … are added before `.log`; files are created with O_EXCL, so an existing
file is never truncated or overwritten.

Every bgrun line starts with `[bgrun] ` and is `key: value`; values that are JSON (command,
argv, cwd, environment) are written as JSON so any character survives. The header is written at
submission, the attempt lines as attempts start and end, and the footer once, when the job is
final. The footer always starts on a new line. docs/log-format.md lists every line.

    [bgrun] job: 12
    [bgrun] name: train_model
    [bgrun] category: training
    [bgrun] command: "python train_model.py --epochs 5"
    [bgrun] argv: null
    [bgrun] cwd: "/home/me/project"
    [bgrun] environment: "/home/me/project/.venv"
    [bgrun] env added: ["WANDB_MODE"]
    [bgrun] created: 2026-12-04T20:31:05.120+00:00
    [bgrun] scheduled for: 2026-12-04T20:31:06.120+00:00
    [bgrun] attempt 1 of 1 started: 2026-12-04T20:31:06.121+00:00 pid 4242
    …the job's own output, bytes unchanged…
    [bgrun] attempt 1 of 1 ended: exit code 0
    [bgrun] state: succeeded
    [bgrun] exit: exit code 0
    [bgrun] duration: 12.345 s
    [bgrun] ended: 2026-12-04T20:31:18.466+00:00
    [bgrun] leftover processes: 0
    [bgrun] sync: record written and verified
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

PREFIX = b"[bgrun] "
HEADER_KEYS = ("job", "name", "category", "command", "argv", "cwd", "environment", "env added",
               "created", "scheduled for")
JSON_KEYS = frozenset({"command", "argv", "cwd", "environment", "env added"})
FOOTER_FIRST_KEY = "state"
MAX_COLLISION_SUFFIX = 10_000
ATTEMPT_LINE = re.compile(rb"^\[bgrun\] attempt (\d+) of (\d+) (started|ended): (.*)$")


def create_log_file(folder: Path, name: str, when: float | None = None) -> Path:
    """Create and return a new, empty log file for `name`, never reusing an existing file."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(when if when is not None else time.time()))
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, MAX_COLLISION_SUFFIX):
        suffix = "" if number == 1 else f"_{number}"
        path = folder / f"{name}_{stamp}{suffix}.log"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"more than {MAX_COLLISION_SUFFIX} logs named {name} in one second in {folder}")


def format_line(key: str, value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False) if key in JSON_KEYS else str(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return PREFIX + f"{key}: {text}\n".encode("utf-8", "surrogateescape")


def header_bytes(job: dict[str, Any]) -> bytes:
    environment = job.get("environment")
    values = {
        "job": job["id"],
        "name": job["name"],
        "category": job["category"],
        "command": job["command"],
        "argv": job.get("argv"),
        "cwd": job["cwd"],
        "environment": environment,
        "env added": sorted((job.get("env") or {}).keys()),
        "created": job["created_at"],
        "scheduled for": job["scheduled_for"],
    }
    return b"".join(format_line(key, values[key]) for key in HEADER_KEYS)


def footer_bytes(job: dict[str, Any], outcome: str, leftovers: str) -> bytes:
    """Return the footer lines before the sync line, which is written once the store is updated."""
    lines = [
        format_line("state", job["state"] + (f" ({job['reason']})" if job.get("reason") else "")),
        format_line("exit", outcome),
        format_line("duration", f"{job['duration']:.3f} s" if job.get("duration") is not None else "none"),
        format_line("ended", job.get("ended_at")),
        format_line("leftover processes", leftovers),
    ]
    return b"".join(lines)


def append(path: Path | str, data: bytes, *, new_line: bool = True) -> None:
    """Append bgrun lines to a log, starting on a new line when the output did not end with one."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        if new_line and not ends_with_newline(fd):
            data = b"\n" + data
        os.write(fd, data)
    finally:
        os.close(fd)


def ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def parse(path: Path, tail_bytes: int = 64 * 1024) -> dict[str, Any]:
    """Read the header, attempt lines and last footer of a log; values are decoded.

    Returns a dict with "header" and "footer" (None when the log has no footer) and "attempts".
    Only the head and the tail of the file are read, so large logs cost little.
    """
    with open(path, "rb") as handle:
        head = handle.read(16 * 1024)
        size = os.fstat(handle.fileno()).st_size
        if size > len(head):
            handle.seek(max(len(head), size - tail_bytes))
            tail = handle.read()
        else:
            tail = b""
    header: dict[str, Any] = {}
    for raw in head.split(b"\n"):
        if not raw.startswith(PREFIX):
            break
        key, value = _split(raw)
        if key not in HEADER_KEYS:
            break
        header[key] = value
    footer: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = []
    lines = (head + tail if tail else head).split(b"\n")
    for index, raw in enumerate(lines):
        match = ATTEMPT_LINE.match(raw)
        if match:
            attempts.append({"number": int(match.group(1)), "of": int(match.group(2)),
                             "event": match.group(3).decode(), "detail": match.group(4).decode("utf-8", "replace")})
        elif raw.startswith(PREFIX + FOOTER_FIRST_KEY.encode() + b": "):
            footer = {}
            for line in lines[index:]:
                if not line.startswith(PREFIX):
                    break
                key, value = _split(line)
                footer[key] = value
    return {"header": header, "footer": footer, "attempts": attempts}


def _split(raw: bytes) -> tuple[str, Any]:
    text = raw[len(PREFIX):].decode("utf-8", "replace")
    key, _, value = text.partition(": ")
    if key in JSON_KEYS:
        try:
            return key, json.loads(value)
        except json.JSONDecodeError:
            return key, value
    return key, value
