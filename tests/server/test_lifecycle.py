"""The server owns no job: killing it, closing its stdin or shutting it down leaves jobs running."""

from __future__ import annotations

import sys

import pytest

from bgrun.engine import liveness

TIMEOUT = 60.0


@pytest.mark.asyncio
async def test_new_server_reports_outcome_after_kill(start_session, project, tmp_path):
    flag = tmp_path / "finish-now"
    first = await start_session()
    job = await first.request("bgrun/run", {"command": f"while [ ! -e '{flag}' ]; do sleep 0.1; done; echo finished",
                                            "delay": 0})
    await first.wait_state(job["id"], "running")

    first.kill()
    await first.wait_exit()
    record = project.job(job["id"])
    assert record["state"] == "running"
    assert liveness.is_alive(record["pid"], record["pid_create_time"])

    second = await start_session()
    assert (await second.request("bgrun/get", {"id": job["id"]}))["state"] == "running"
    flag.touch()
    done = await second.wait_state(job["id"], "succeeded")

    assert done["exit_code"] == 0
    assert "finished" in project.wait_footer(job["id"])


@pytest.mark.asyncio
async def test_new_server_lists_finished_job(start_session, project):
    first = await start_session()
    job = await first.request("bgrun/run", {"command": "echo quick", "delay": 0})
    # The response comes before the supervisor starts, and a killed server starts none.
    await first.wait_for(lambda: any(item.get("supervisor_pid") for item in first.changes_of(job["id"])),
                         "the job's supervisor PID")
    first.kill()
    await first.wait_exit()
    project.wait_state(job["id"], "succeeded")

    second = await start_session()
    listed = await second.request("bgrun/list", {})

    assert [(item["id"], item["state"]) for item in listed] == [(job["id"], "succeeded")]


def test_closed_stdin_leaves_job_running(raw_server, project):
    server = raw_server()
    server.initialize()
    job = server.request("bgrun/run", {"command": "sleep 120", "delay": 0})["result"]
    running = project.wait_state(job["id"], "running")

    server.process.stdin.close()

    assert server.process.wait(TIMEOUT) == 1
    assert liveness.is_alive(running["pid"], running["pid_create_time"])
    assert project.job(job["id"])["state"] == "running"


def test_shutdown_then_exit_returns_zero(raw_server, project):
    server = raw_server()
    server.initialize()
    job = server.request("bgrun/run", {"command": "sleep 120", "delay": 0})["result"]
    running = project.wait_state(job["id"], "running")

    assert server.request("shutdown") == {"jsonrpc": "2.0", "id": server.next_id, "result": None}
    after = server.request("bgrun/list", {})
    server.send({"jsonrpc": "2.0", "method": "exit"})

    assert after["error"]["code"] == -32600
    assert "shutdown" in after["error"]["message"]
    assert server.process.wait(TIMEOUT) == 0
    assert liveness.is_alive(running["pid"], running["pid_create_time"])


def test_exit_without_shutdown_returns_one(raw_server):
    server = raw_server()
    server.initialize()

    server.send({"jsonrpc": "2.0", "method": "exit"})

    assert server.process.wait(TIMEOUT) == 1


def test_request_before_initialize_is_rejected(raw_server):
    server = raw_server()

    response = server.request("bgrun/list", {})

    assert response["error"]["code"] == -32002
    assert "initialize" in response["error"]["message"]
    server.initialize()
    server.assert_alive()



def test_bgrun_serve_logs_at_info(raw_server, project, tmp_path):
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        server = raw_server(command=[sys.executable, "-m", "bgrun", "serve"], stderr=stderr)
    server.initialize()
    job = server.request("bgrun/run", {"command": "echo logged", "delay": 0})["result"]
    project.wait_state(job["id"], "succeeded")
    missing = server.request("bgrun/get", {"id": "999"})
    server.request("shutdown")
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert server.process.wait(TIMEOUT) == 0

    lines = stderr_path.read_text().splitlines()
    assert missing["error"]["code"] == 4
    assert any("INFO" in line and "started" in line for line in lines), lines
    assert any("INFO" in line and f"watching log root {project.log_root}" in line for line in lines), lines
    assert any(f"job {job['id']} " in line and "scheduled -> running" in line for line in lines), lines
    assert any(f"job {job['id']} " in line and "running -> succeeded" in line for line in lines), lines
    assert len([line for line in lines if "job 999" in line]) == 1, lines
    assert any("INFO" in line and "stopped (exit code 0)" in line for line in lines), lines
