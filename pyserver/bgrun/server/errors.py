"""JSON-RPC errors of the bgrun language server.

Engine errors keep the engine's message and get the code that matches the exit status of the
same failure in the `bgrun` CLI, so a client can tell them apart without parsing the text:

| code | engine error | meaning |
| ---- | ------------ | ------- |
| 1 | BgrunError | any other engine failure (a stop that timed out, an unreadable store) |
| 2 | UsageError | invalid input that only the engine can judge: a setting, a config file, a name |
| 3 | StartError | the job could not be started: command or folder not found, log folder not writable |
| 4 | JobNotFound | no such job under the log root |
| 5 | StopRefused | the job's PID now belongs to another process, so nothing was signalled |

Protocol errors use the standard JSON-RPC and LSP codes (docs/protocol.md lists them).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pygls.exceptions import JsonRpcException

from ..errors import BgrunError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002

# Error messages quote the value they reject; a 1 MiB name must not come back as a 1 MiB message.
MAX_ECHOED_CHARS = 200
MAX_MESSAGE_CHARS = 2000
_LONG_QUOTED = re.compile(r"'[^'\n]{%d,}'|\"[^\"\n]{%d,}\"" % (MAX_ECHOED_CHARS + 1, MAX_ECHOED_CHARS + 1))


def _shorten_quoted(match: re.Match) -> str:
    quote, value = match.group(0)[0], match.group(0)[1:-1]
    return f"{quote}{value[:MAX_ECHOED_CHARS]}…{quote} ({len(value)} characters)"


def shorten_message(text: str) -> str:
    """Cut each quoted value in `text` to MAX_ECHOED_CHARS, and the whole text to about MAX_MESSAGE_CHARS."""
    text = _LONG_QUOTED.sub(_shorten_quoted, text)
    if len(text) > MAX_MESSAGE_CHARS:
        head, tail = text[:MAX_MESSAGE_CHARS - 300], text[-300:]
        text = f"{head} … ({len(text) - len(head) - len(tail)} characters left out) … {tail}"
    return text


class RequestFailed(JsonRpcException):
    """An error response that the server has already logged, so pygls must not log it again."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message=shorten_message(message), code=code, data=data)


class InvalidParams(RequestFailed):
    """Params that do not match the method's parameter class, with one entry per field in `errors`."""

    def __init__(self, errors: list[dict[str, str]]):
        errors = [dict(error, message=shorten_message(error["message"])) for error in errors]
        message = "invalid params: " + "; ".join(f"{e['path']}: {e['message']}" for e in errors)
        super().__init__(INVALID_PARAMS, message, {"errors": errors})
        self.errors = errors


def invalid_field(path: str, message: str) -> InvalidParams:
    """Return the InvalidParams error for one field, such as `params.logRoot`."""
    return InvalidParams([{"path": path, "message": message}])


def from_engine_error(error: BgrunError) -> RequestFailed:
    """Return the JSON-RPC error for an engine error: its message, its exit code as the code."""
    return RequestFailed(int(error.exit_code), str(error), {"type": type(error).__name__})


def internal_error(error: BaseException) -> RequestFailed:
    """Return the JSON-RPC error for an unexpected exception, which is a bug in bgrun."""
    return RequestFailed(INTERNAL_ERROR, f"internal error: {type(error).__name__}: {error}",
                         {"type": type(error).__name__})


class SkipLoggedErrors(logging.Filter):
    """Drop pygls's traceback for a RequestFailed, which bgrun has already logged in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        return not (exc_info and isinstance(exc_info[1], RequestFailed))
