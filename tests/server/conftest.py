"""Fixtures for the language server tests: real servers over stdio, real jobs, real clients.

`lsp` is a pytest-lsp client (pygls) connected to `python -m bgrun.server`, initialized with the
test's project as its only workspace folder and BGRUN_LOG_ROOT pointing at the project's logs.
`RawServer` speaks the base protocol by hand, for tests that send what no real client would.
Tests wait on notifications or conditions with generous timeouts, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any, Callable

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import register_lsp_features

from bgrun.server.converter import make_protocol_converter

TIMEOUT = 60.0
SERVER_COMMAND = [sys.executable, "-m", "bgrun.server", "--log-level", "INFO"]


def make_client() -> LanguageClient:
    """Return a pytest-lsp client that keeps custom params and results as plain JSON."""
    client = LanguageClient(converter_factory=make_protocol_converter)
    register_lsp_features(client)
    return client


def collapse(states: list[str]) -> list[str]:
    """Return `states` with repeats in a row dropped: a, a, b, a becomes a, b, a."""
    result: list[str] = []
    for state in states:
        if not result or result[-1] != state:
            result.append(state)
    return result


class LspSession:
    """One server process and its client, with every bgrun notification recorded."""

    def __init__(self, project, settings: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        self.project = project
        self.settings = settings or {}
        self.env = dict(project.env, BGRUN_LOG_ROOT=str(project.log_root), **(env or {}))
        self.client: LanguageClient | None = None
        self.changes: list[dict[str, Any]] = []
        self.removals: list[dict[str, Any]] = []
        self.drifts: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.killed = False

    async def start(self) -> "LspSession":
        config = ClientServerConfig(server_command=SERVER_COMMAND, server_env=self.env, client_factory=make_client)
        client = self.client = await config.start()
        client.set_configuration(self.settings, section="bgrun")
        for method, sink in (("bgrun/jobChanged", self.changes), ("bgrun/jobRemoved", self.removals),
                             ("bgrun/driftFound", self.drifts)):
            client.feature(method)(self._recorder(sink))
        uri = self.project.root.as_uri()
        capabilities = types.ClientCapabilities(workspace=types.WorkspaceClientCapabilities(configuration=True))
        await asyncio.wait_for(client.initialize_session(types.InitializeParams(
            capabilities=capabilities, root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name="project")])), TIMEOUT)
        return self

    def _recorder(self, sink: list) -> Callable[[Any], None]:
        def record(params: Any) -> None:
            sink.append(params)
            self.arrived.set()
        return record

    @property
    def pid(self) -> int:
        return self.client._server.pid

    async def request(self, method: str, params: Any = None, timeout: float = TIMEOUT) -> Any:
        return await asyncio.wait_for(self.client.protocol.send_request_async(method, params), timeout)

    async def error_of(self, method: str, params: Any = None) -> JsonRpcException:
        """Send a request that must fail, and return its JSON-RPC error."""
        with pytest.raises(JsonRpcException) as caught:
            await self.request(method, params)
        return caught.value

    def changes_of(self, job_id: str) -> list[dict[str, Any]]:
        return [job for job in self.changes if job["id"] == job_id]

    def states_of(self, job_id: str) -> list[str]:
        """Return the states notified for a job, with repeats in a row dropped."""
        return collapse([job["state"] for job in self.changes_of(job_id)])

    async def wait_exit(self) -> int:
        return await asyncio.wait_for(self.client._server.wait(), TIMEOUT)

    async def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
        """Wait until `predicate()` is true, checking after each notification."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), min(remaining, 1.0))
            except asyncio.TimeoutError:
                pass

    async def poll_until(self, request: Callable[[], Any], accept: Callable[[Any], bool], what: str,
                         timeout: float = TIMEOUT) -> Any:
        """Repeat a request until its result is accepted, for state that no notification announces."""
        deadline = time.monotonic() + timeout
        while True:
            result = await request()
            if accept(result):
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}; last result: {result!r}")
            await asyncio.sleep(0.05)

    async def wait_state(self, job_id: str, *states: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        def reached():
            return next((job for job in self.changes_of(job_id) if job["state"] in states), None)
        return await self.wait_for(reached, f"a bgrun/jobChanged of job {job_id} in {states}", timeout)

    async def change_settings(self, settings: dict[str, Any]) -> None:
        self.client.set_configuration(settings, section="bgrun")
        self.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.killed = True

    async def close(self) -> None:
        if self.client is None:
            return
        try:
            if not self.killed:
                await asyncio.wait_for(self.client.shutdown_session(), TIMEOUT)
        except (asyncio.TimeoutError, JsonRpcException, RuntimeError):
            self.kill()
        await asyncio.wait_for(self.client.stop(), TIMEOUT)


@pytest_asyncio.fixture
async def start_session(project):
    """Return a factory of started sessions, each closed at teardown."""
    sessions: list[LspSession] = []

    async def start(settings: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> LspSession:
        session = LspSession(project, settings, env)
        sessions.append(session)
        return await session.start()

    yield start
    for session in sessions:
        await session.close()


@pytest_asyncio.fixture
async def lsp(start_session) -> LspSession:
    return await start_session()


class RawServer:
    """A server process driven over its pipes with hand-written base-protocol messages."""

    def __init__(self, project, env: dict[str, str] | None = None, command: list[str] | None = None,
                 stderr: Any = None):
        server_env = dict(project.env, BGRUN_LOG_ROOT=str(project.log_root), **(env or {}))
        self.project = project
        self.process = subprocess.Popen(command or SERVER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=stderr, env=server_env, cwd=project.root)
        self.buffer = b""
        self.next_id = 0
        self.notifications: list[dict[str, Any]] = []

    def send_bytes(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: Any) -> None:
        body = json.dumps(message).encode("utf-8")
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def read_message(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            header_end = self.buffer.find(b"\r\n\r\n")
            if header_end >= 0:
                headers = self.buffer[:header_end].decode("ascii").split("\r\n")
                length = next(int(line.split(":", 1)[1]) for line in headers if line.lower().startswith("content-length"))
                body_start = header_end + 4
                if len(self.buffer) - body_start >= length:
                    body = self.buffer[body_start:body_start + length]
                    self.buffer = self.buffer[body_start + length:]
                    return json.loads(body)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out after {timeout} s waiting for a message from the server")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    pytest.fail(f"the server closed stdout (exit status {self.process.poll()})")
                self.buffer += chunk

    def response_to(self, msg_id: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Read until the response with `msg_id`, keeping the notifications read on the way."""
        while True:
            message = self.read_message(timeout)
            if "method" in message and "id" not in message:
                self.notifications.append(message)
                continue
            if message.get("id") == msg_id:
                return message

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.response_to(self.next_id)

    def initialize(self) -> dict[str, Any]:
        uri = self.project.root.as_uri()
        response = self.request("initialize", {"processId": os.getpid(), "rootUri": uri, "capabilities": {},
                                               "workspaceFolders": [{"uri": uri, "name": "project"}]})
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return response

    def assert_alive(self) -> None:
        """Check that the server still responds to a valid request."""
        response = self.request("bgrun/list", {"limit": 1})
        assert "result" in response, response

    def close(self) -> int:
        if self.process.poll() is None:
            try:
                self.request("shutdown")
                self.send({"jsonrpc": "2.0", "method": "exit"})
                return self.process.wait(TIMEOUT)
            except (OSError, subprocess.TimeoutExpired, pytest.fail.Exception):
                self.process.kill()
        return self.process.wait(TIMEOUT)


@pytest.fixture
def raw_server(project):
    servers: list[RawServer] = []

    def start(env: dict[str, str] | None = None, command: list[str] | None = None, stderr: Any = None) -> RawServer:
        server = RawServer(project, env, command, stderr)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()

