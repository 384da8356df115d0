"""Progress of a running job, read from the progress bar at the end of its log.

A progress bar redraws one line with carriage returns, so only a segment next to a `\\r` counts:
a tqdm bar (`45%|████      | 45/100`), a Keras bar (`45/100 [=====>....]`) or any other `45%`.
Only the tail of the log is read, and only when the log has grown. The value lives in the
server's memory and goes out in `bgrun/jobChanged`. It is never written to the store.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

TAIL_BYTES = 4096
TQDM_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)%\|")
KERAS_STEPS = re.compile(r"(\d+)/(\d+) \[")
ANY_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s?%")
SEGMENT = re.compile(r"[^\r\n]+")


def _latest_redrawn_segment(text: str) -> str | None:
    """Return the last line segment that a carriage return starts or ends."""
    for match in reversed(list(SEGMENT.finditer(text))):
        before = text[match.start() - 1] if match.start() > 0 else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if before == "\r" or (after == "\r" and text[match.end():match.end() + 2] != "\r\n"):
            return match.group()
    return None


def parse_progress(tail: bytes) -> float | None:
    """Return the percentage (0-100) of the latest progress bar in `tail`, or None."""
    text = tail.decode("utf-8", "replace")
    segment = _latest_redrawn_segment(text)
    if segment is None:
        return None
    match = TQDM_PERCENT.findall(segment)
    if match:
        return min(100.0, float(match[-1]))
    steps = KERAS_STEPS.findall(segment)
    if steps:
        done, total = (int(value) for value in steps[-1])
        return min(100.0, 100.0 * done / total) if total else None
    match = ANY_PERCENT.findall(segment)
    if match:
        return min(100.0, float(match[-1]))
    return None


@dataclass
class LogProgress:
    """The log size and progress value last read from one running job's log."""

    log_path: str
    size: int = -1
    value: float | None = None

    def refresh(self) -> bool:
        """Read the log's tail when the log has grown, and return True when the value changed."""
        try:
            size = os.stat(self.log_path).st_size
        except OSError:
            return False
        if size == self.size:
            return False
        self.size = size
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(max(0, size - TAIL_BYTES))
                tail = handle.read(TAIL_BYTES)
        except OSError:
            return False
        value = parse_progress(tail)
        if value is None:
            return False
        value = round(value, 1)
        if value == self.value:
            return False
        self.value = value
        return True
