"""The LSP base protocol on a file descriptor: `Content-Length` framing and JSON decoding.

Every message ends as one of three things: a decoded JSON value, a FrameError with the JSON-RPC
error to send back, or the end of the stream. A malformed message never ends the stream:
the reader skips to the next header block and goes on. After a header block without a valid
Content-Length, the next header block is the next `Content-Length:` in the stream.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterator, Union

from .errors import INVALID_REQUEST, PARSE_ERROR

MAX_HEADER_LINE_BYTES = 8192
MAX_HEADER_LINES = 64
# Large enough for any request bgrun takes (a command line is at most 128 KiB), small enough
# that a wrong Content-Length cannot make the server allocate gigabytes.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
RESYNC_MARKER = b"content-length:"


@dataclass
class FrameError:
    """A message that cannot be read, with the JSON-RPC error `code` and `message` to send back."""

    code: int
    message: str


Frame = Union[FrameError, Any]


class FdReader:
    """Buffered reads from a file descriptor with os.read.

    A BufferedReader is not used because a daemon thread blocked inside one can abort the
    interpreter at exit ("could not acquire lock ... at interpreter shutdown").
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.buffer = bytearray()
        self.at_end = False

    def _fill(self) -> bool:
        if self.at_end:
            return False
        try:
            chunk = os.read(self.fd, READ_CHUNK_BYTES)
        except OSError:
            chunk = b""
        if not chunk:
            self.at_end = True
            return False
        self.buffer += chunk
        return True

    def readline(self, limit: int) -> bytes:
        """Return the next line with its newline, or `limit` bytes of a longer line, or b"" at the end."""
        searched = 0
        while True:
            index = self.buffer.find(b"\n", searched, limit)
            if index >= 0:
                return self._take(index + 1)
            if len(self.buffer) >= limit:
                return self._take(limit)
            searched = len(self.buffer)
            if not self._fill():
                return self._take(len(self.buffer))

    def read(self, size: int) -> bytes:
        """Return `size` bytes, or fewer when the stream ends first."""
        while len(self.buffer) < size and self._fill():
            pass
        return self._take(min(size, len(self.buffer)))

    def skip_to(self, marker: bytes) -> bool:
        """Drop bytes up to the next `marker` (lowercase ASCII, matched in any case); False at the end."""
        while True:
            index = self.buffer.lower().find(marker)
            if index >= 0:
                del self.buffer[:index]
                return True
            # Keep a tail that may hold the start of a marker split across two reads.
            del self.buffer[:max(0, len(self.buffer) - len(marker) + 1)]
            if not self._fill():
                return False

    def skip(self, size: int) -> None:
        while size > 0:
            if not self.buffer and not self._fill():
                return
            taken = min(size, len(self.buffer))
            del self.buffer[:taken]
            size -= taken

    def _take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def _read_header_block(reader: FdReader) -> tuple[int | None, list[str]] | None:
    """Return (Content-Length or None, problems) for the next header block, or None at the end."""
    length: int | None = None
    problems: list[str] = []
    lines = 0
    while True:
        line = reader.readline(MAX_HEADER_LINE_BYTES)
        if not line:
            return None
        if not line.endswith(b"\n"):
            if reader.at_end and not reader.buffer:
                return None
            problems.append(f"a header line is longer than {MAX_HEADER_LINE_BYTES} bytes")
            while line and not line.endswith(b"\n"):
                line = reader.readline(MAX_HEADER_LINE_BYTES)
            continue
        text = line.rstrip(b"\r\n")
        marker_at = text.lower().find(RESYNC_MARKER)
        if marker_at > 0:
            # A body sent without headers runs into the next message's header line. Report the
            # stray bytes, and put the header back so that the next message is read as usual.
            reader.buffer[:0] = line[marker_at:]
            problems.append(f"{marker_at} bytes without a header before 'Content-Length'")
            return None, problems
        if not text:
            if lines == 0 and not problems:
                continue
            return length, problems
        lines += 1
        if lines > MAX_HEADER_LINES:
            problems.append(f"more than {MAX_HEADER_LINES} header lines without the blank line that ends them")
            return None if reader.at_end else (None, problems)
        name, separator, value = text.partition(b":")
        if separator and name.strip().lower() == b"content-length":
            value = value.strip()
            if value.isdigit() and len(value) <= 18:
                length = int(value)
            else:
                problems.append(f"invalid Content-Length {value[:40].decode('latin-1')!r}")
        elif not separator:
            problems.append(f"invalid header line {text[:40].decode('latin-1')!r}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode(body: bytes) -> Frame:
    """Return the JSON value of a message body, or a FrameError for JSON-RPC's parse error."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        return FrameError(PARSE_ERROR, "invalid JSON: nested too deeply")
    except ValueError as error:
        return FrameError(PARSE_ERROR, f"invalid JSON: {error}")


def read_frames(reader: FdReader) -> Iterator[Frame]:
    """Yield each message of the stream, decoded, or a FrameError, until the stream ends."""
    while True:
        block = _read_header_block(reader)
        if block is None:
            return
        length, problems = block
        if length is None:
            detail = "; ".join(problems) or "no Content-Length header"
            yield FrameError(PARSE_ERROR, f"missing or invalid Content-Length header ({detail}); every "
                                          f"message needs 'Content-Length: N' and a blank line before its body")
            # Without a length the body cannot be skipped exactly, so the body and anything else up
            # to the next Content-Length header are dropped, and reading starts again there.
            if not reader.skip_to(RESYNC_MARKER):
                return
            continue
        if length > MAX_MESSAGE_BYTES:
            reader.skip(length)
            yield FrameError(INVALID_REQUEST, f"message of {length} bytes is larger than the maximum of "
                                              f"{MAX_MESSAGE_BYTES} bytes; it was skipped")
            continue
        body = reader.read(length)
        if len(body) < length:
            return
        yield decode(body)
