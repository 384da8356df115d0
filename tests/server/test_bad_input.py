"""Malformed input written by hand on the server's stdin: each gets a JSON-RPC error, and the
server responds to the next request as usual."""

from __future__ import annotations

import json

import pytest

from bgrun.server.framing import MAX_MESSAGE_BYTES
from bgrun.store import Store


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def message(**fields) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", **fields}).encode("utf-8"))


BROKEN_FRAMES = [
    ("invalid JSON", frame(b'{"jsonrpc": "2.0", "id": 1, "method": '), -32700, None),
    ("invalid UTF-8", frame(b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}'), -32700, None),
    ("NaN literal", frame(b'{"jsonrpc": "2.0", "id": 1, "method": "bgrun/run", "params": {"delay": NaN}}'), -32700, None),
    ("deep nesting", frame(b"[" * 200_000 + b"]" * 200_000), -32700, None),
    ("no Content-Length", b"Content-Type: application/json\r\n\r\n", -32700, None),
    ("bad Content-Length", b"Content-Length: twelve\r\n\r\n", -32700, None),
    ("stray text", b"hello server\r\n\r\n", -32700, None),
    ("array", frame(b"[1, 2, 3]"), -32600, None),
    ("string", frame(b'"just text"'), -32600, None),
    ("wrong version", frame(b'{"jsonrpc": "1.0", "id": 7, "method": "bgrun/list"}'), -32600, 7),
    ("no method", message(id=8), -32600, 8),
    ("boolean id", message(id=True, method="bgrun/list"), -32600, None),
    ("float id", message(id=1.5, method="bgrun/list"), -32600, None),
    ("number method", message(id=9, method=5), -32600, 9),
    ("string params", message(id=10, method="bgrun/list", params="all"), -32600, 10),
    ("unknown method", message(id=11, method="bgrun/explode", params={}), -32601, 11),
    ("array params", message(id=12, method="bgrun/get", params=[1]), -32602, 12),
    ("NUL in command", message(id=13, method="bgrun/run", params={"command": "echo \u0000"}), -32602, 13),
    ("NUL in cwd", message(id=14, method="bgrun/run", params={"command": "echo", "cwd": "/tmp/\u0000"}), -32602, 14),
    ("bad initialize", message(id=15, method="initialize", params={"processId": "abc", "capabilities": {}}), -32602, 15),
    ("id outside ids", message(id=16, method="bgrun/get", params={"id": "../../etc/passwd"}), -32602, 16),
    ("log root outside", message(id=17, method="bgrun/get", params={"id": "1", "logRoot": "/etc"}), -32602, 17),
    ("wrong types", message(id=18, method="bgrun/run", params={"command": 1, "delay": "soon", "env": []}), -32602, 18),
]


@pytest.fixture
def server(raw_server):
    started = raw_server()
    started.initialize()
    return started


@pytest.mark.parametrize("data, code, msg_id", [case[1:] for case in BROKEN_FRAMES],
                         ids=[case[0] for case in BROKEN_FRAMES])
def test_broken_message_gets_error(server, data, code, msg_id):
    server.send_bytes(data)

    response = server.response_to(msg_id)

    assert response["error"]["code"] == code, response
    assert response["error"]["message"]
    server.assert_alive()


def test_every_broken_message_in_one_stream(server):
    server.send_bytes(b"".join(case[1] for case in BROKEN_FRAMES))
    # After a header block without a valid Content-Length, the server drops everything up to the
    # next Content-Length header, so the stray text that follows the bad length gets no response.
    answered = [case for case in BROKEN_FRAMES if case[0] != "stray text"]
    responses = []
    while len(responses) < len(answered):
        received = server.read_message()
        if "id" in received:
            responses.append(received)

    without_id = [response["error"]["code"] for response in responses if response["id"] is None]
    by_id = {response["id"]: response["error"]["code"] for response in responses if response["id"] is not None}
    assert without_id == [code for _, _, code, msg_id in answered if msg_id is None]
    assert by_id == {msg_id: code for _, _, code, msg_id in answered if msg_id is not None}
    server.assert_alive()


@pytest.mark.parametrize("broken", [
    b"Content-Length: abc\r\n\r\n" + json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bgrun/list"}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bgrun/list"}).encode(),
    b"Content-Type: application/json\r\n\r\n{}",
], ids=["invalid length", "no header", "no length"])
def test_bad_content_length_then_next_message(server, broken):
    server.send_bytes(broken)
    server.send_bytes(message(id=50, method="bgrun/list", params={}))

    error = server.response_to(None)
    answer = server.response_to(50)

    assert error["error"]["code"] == -32700
    assert "Content-Length" in error["error"]["message"]
    assert answer["result"] == []
    server.assert_alive()


def test_huge_name_is_cut_in_error(server):
    response = server.request("bgrun/run", {"command": "echo", "name": "n" * 100_000})

    assert response["error"]["code"] == 2
    assert "n" * 200 in response["error"]["message"]
    assert len(response["error"]["message"]) < 1000


def test_message_over_size_limit_is_skipped(server):
    size = MAX_MESSAGE_BYTES + 1
    server.send_bytes(b"Content-Length: %d\r\n\r\n" % size)
    server.send_bytes(b" " * size)

    response = server.response_to(None)

    assert response["error"]["code"] == -32600
    assert str(MAX_MESSAGE_BYTES) in response["error"]["message"]
    server.assert_alive()


def test_invalid_params_name_each_field(server):
    response = server.request("bgrun/run", {"command": 5, "delay": "soon", "dealy": 1})

    message = response["error"]["message"]
    assert response["error"]["code"] == -32602
    assert "params.command" in message
    assert "params.delay" in message
    assert "params.dealy: unknown field" in message
    paths = [item["path"] for item in response["error"]["data"]["errors"]]
    assert paths == ["params.command", "params.delay", "params.dealy"]


def test_huge_command_is_usage_error(server):
    response = server.request("bgrun/run", {"command": "echo " + "x" * (1024 * 1024), "delay": 0})

    assert response["error"]["code"] == 2
    assert "longer than" in response["error"]["message"]
    assert len(response["error"]["message"]) < 1000
    server.assert_alive()


@pytest.mark.parametrize("field, value", [("category", "../../etc"), ("name", "../escape"), ("category", "/abs"),
                                          ("category", ".bgrun")])
def test_names_that_leave_log_root_are_rejected(server, project, field, value):
    response = server.request("bgrun/run", {"command": "echo", field: value, "delay": 0})

    assert response["error"]["code"] == 2
    assert repr(value) in response["error"]["message"]
    assert not (project.log_root / ".bgrun" / "jobs").exists() or not list((project.log_root / ".bgrun" / "jobs").iterdir())


def test_remove_keeps_log_path_outside_log_root(server, project, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me", encoding="utf-8")
    job = server.request("bgrun/run", {"command": "echo", "delay": 0})["result"]
    project.wait_state(job["id"], "succeeded")
    project.wait_footer(job["id"])
    store = Store(project.log_root)
    store.update(job["id"], lambda record: record.update(log_path=str(outside)))
    store.close()

    response = server.request("bgrun/remove", {"id": job["id"]})

    assert response["result"]["id"] == job["id"]
    assert outside.read_text(encoding="utf-8") == "keep me"
    assert server.request("bgrun/get", {"id": job["id"]})["error"]["code"] == 4


def test_whole_float_job_id_is_accepted(server):
    whole = server.request("bgrun/get", {"id": 1.0})
    fraction = server.request("bgrun/get", {"id": 1.5})

    assert whole["error"]["code"] == 4, whole
    assert fraction["error"]["code"] == -32602, fraction
