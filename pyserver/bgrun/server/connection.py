"""The stdio connection: a reader thread, JSON-RPC envelope checks, and dispatch to pygls.

pygls's own stdio loop logs a message that it cannot parse or structure and sends nothing back,
so the client waits forever. Here every malformed message gets a JSON-RPC error response (with
the request's id when it has a usable one, else null), and the next message is read as usual.
All protocol work and every write to stdout happen on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Callable

from pygls.exceptions import JsonRpcException

from .errors import INTERNAL_ERROR, INVALID_REQUEST, shorten_message
from .framing import FdReader, FrameError, read_frames

log = logging.getLogger("bgrun.server.connection")

JSONRPC_VERSION = "2.0"


class EnvelopeError(Exception):
    def __init__(self, message: str, msg_id: Any = None):
        super().__init__(message)
        self.msg_id = msg_id


def _usable_id(data: dict[str, Any]) -> Any:
    msg_id = data.get("id")
    if isinstance(msg_id, bool) or not isinstance(msg_id, (str, int)):
        return None
    return msg_id


def classify(data: Any) -> str:
    """Return "request", "notification" or "response", or raise EnvelopeError."""
    if not isinstance(data, dict):
        raise EnvelopeError("expected a JSON-RPC message object; batches are not supported")
    msg_id = _usable_id(data)
    if data.get("jsonrpc") != JSONRPC_VERSION:
        raise EnvelopeError('missing or wrong "jsonrpc": expected "2.0"', msg_id)
    if "id" in data and msg_id is None:
        raise EnvelopeError('invalid "id": expected a string or an integer')
    if "method" in data:
        if not isinstance(data["method"], str) or not data["method"]:
            raise EnvelopeError('invalid "method": expected a non-empty string', msg_id)
        if data.get("params") is not None and not isinstance(data["params"], (dict, list)):
            raise EnvelopeError('invalid "params": expected an object or an array', msg_id)
        return "request" if "id" in data else "notification"
    if "id" in data and ("result" in data or "error" in data):
        return "response"
    raise EnvelopeError('not a request, notification or response: no "method", and no "result" or "error"', msg_id)


class StdoutWriter:
    """pygls's writer interface over a binary stream. A write that fails ends the connection."""

    def __init__(self, stream, on_lost: Callable[[], None]):
        self.stream = stream
        self.on_lost = on_lost
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError) as error:
            log.warning("cannot write to the client (%s); closing the connection", error)
            self.closed = True
            self.on_lost()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.stream.close()
            except OSError:
                pass


class Connection:
    """Reads messages from a file descriptor and hands them to a pygls protocol on `loop`."""

    def __init__(self, protocol, loop: asyncio.AbstractEventLoop, in_fd: int, out_stream,
                 is_shut_down: Callable[[], bool]):
        self.protocol = protocol
        self.loop = loop
        self.reader = FdReader(in_fd)
        self.writer = StdoutWriter(out_stream, lambda: self.finish(1))
        self.is_shut_down = is_shut_down
        self.finished: asyncio.Future[int] = loop.create_future()
        protocol.set_writer(self.writer, include_headers=True)

    def start(self) -> None:
        threading.Thread(target=self._read_loop, name="bgrun-stdin", daemon=True).start()

    def _read_loop(self) -> None:
        try:
            for frame in read_frames(self.reader):
                if not self._post(self._deliver, frame):
                    return
        except Exception:
            log.exception("the stdin reader failed; closing the connection")
        self._post(self._on_end_of_input)

    def _post(self, callback, *args) -> bool:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
            return True
        except RuntimeError:
            return False

    def _on_end_of_input(self) -> None:
        if self.finished.done():
            return
        log.info("stdin closed; exiting without touching any job")
        self.finish(0 if self.is_shut_down() else 1)

    def finish(self, code: int) -> None:
        if not self.finished.done():
            self.finished.set_result(code)

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        body = json.dumps({"jsonrpc": JSONRPC_VERSION, "id": msg_id,
                           "error": {"code": code, "message": shorten_message(message)}}).encode("utf-8")
        self.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _deliver(self, frame: Any) -> None:
        if self.finished.done():
            return
        if isinstance(frame, FrameError):
            log.warning("rejected a message: %s", frame.message)
            self.send_error(None, frame.code, frame.message)
            return
        try:
            kind = classify(frame)
        except EnvelopeError as error:
            log.warning("rejected a message (id %s): %s", error.msg_id, error)
            self.send_error(error.msg_id, INVALID_REQUEST, str(error))
            return
        method = frame.get("method")
        if kind == "request" and self.is_shut_down():
            log.warning("rejected request %s (id %s): the server is shutting down", method, frame["id"])
            self.send_error(frame["id"], INVALID_REQUEST,
                            f"request {method!r} rejected: the server received 'shutdown'; send 'exit'")
            return
        try:
            message = self.protocol.structure_message(frame)
        except JsonRpcException as error:
            log.warning("rejected %s %s (id %s): %s", kind, method, frame.get("id"), shorten_message(error.message))
            if kind == "request":
                self.send_error(frame["id"], error.code, error.message)
            return
        self._handle(message, kind, frame)

    def _handle(self, message: Any, kind: str, frame: dict[str, Any]) -> None:
        try:
            self.protocol.handle_message(message)
        except SystemExit as exit_request:
            code = exit_request.code if isinstance(exit_request.code, int) else 0
            log.info("exit received; exiting with code %s without touching any job", code)
            self.finish(code)
        except Exception as error:
            log.exception("failed to handle %s %s (id %s)", kind, frame.get("method"), frame.get("id"))
            if kind == "request":
                self.send_error(frame["id"], INTERNAL_ERROR, f"internal error: {type(error).__name__}: {error}")
