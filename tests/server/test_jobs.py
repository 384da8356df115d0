"""bgrun/run, get, list, stop, rerun, remove and preview against a real server and real jobs."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from bgrun import schema
from bgrun.store import Store

pytestmark = pytest.mark.asyncio


async def test_run_notifies_each_state_in_order(lsp):
    job = await lsp.request("bgrun/run", {"command": "echo hello", "delay": 0})

    assert job["state"] == "scheduled"
    assert set(job) == set(schema.FIELDS)
    done = await lsp.wait_state(job["id"], "succeeded")
    assert lsp.states_of(job["id"]) == ["scheduled", "running", "succeeded"]
    revisions = [change["revision"] for change in lsp.changes_of(job["id"])]
    assert revisions == sorted(set(revisions))
    assert done["exit_code"] == 0
    assert await lsp.request("bgrun/get", {"id": job["id"]}) == lsp.project.job(job["id"])


async def test_run_with_argv_env_and_name(lsp):
    job = await lsp.request("bgrun/run", {"argv": ["sh", "-c", "echo value=$GREETING"], "delay": 0,
                                          "env": {"GREETING": "hi there"}, "name": "greet", "category": "testing"})

    assert job["argv"] == ["sh", "-c", "echo value=$GREETING"]
    assert job["env"] == {"GREETING": "hi there"}
    assert (job["name"], job["category"]) == ("greet", "testing")
    await lsp.wait_state(job["id"], "succeeded")
    assert "value=hi there" in lsp.project.wait_footer(job["id"])


async def test_run_activates_named_environment(lsp):
    venv = lsp.project.root / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    tool = venv / "bin" / "venv-tool"
    tool.write_text("#!/bin/sh\necho \"active: $VIRTUAL_ENV\"\n", encoding="utf-8")
    tool.chmod(0o755)

    job = await lsp.request("bgrun/run", {"command": "venv-tool", "environment": "venv", "delay": 0})

    assert job["environment"] == str(venv.resolve())
    await lsp.wait_state(job["id"], "succeeded")
    assert f"active: {venv.resolve()}" in lsp.project.wait_footer(job["id"])


async def test_stop_cancels_running_job(lsp):
    job = await lsp.request("bgrun/run", {"command": "sleep 120", "delay": 0})
    await lsp.wait_state(job["id"], "running")

    stopped = await lsp.request("bgrun/stop", {"id": job["id"], "grace": 5})

    assert stopped["state"] == "cancelled"
    assert (await lsp.wait_state(job["id"], "cancelled"))["signal"] is not None


async def test_stop_does_not_block_other_requests(lsp):
    job = await lsp.request("bgrun/run", {"command": "trap '' TERM; while true; do sleep 0.1; done", "delay": 0})
    await lsp.wait_state(job["id"], "running")

    stop = asyncio.ensure_future(lsp.request("bgrun/stop", {"id": job["id"], "grace": 3}))
    started = time.monotonic()
    listed = await lsp.request("bgrun/list", {})
    listed_after = time.monotonic() - started

    assert not stop.done()
    assert listed_after < 3
    assert [item["id"] for item in listed] == [job["id"]]
    assert (await stop)["state"] == "cancelled"


async def test_stop_before_start_cancels_scheduled_job(lsp):
    job = await lsp.request("bgrun/run", {"command": "echo never", "delay": 600})

    stopped = await lsp.request("bgrun/stop", {"id": job["id"]})

    assert stopped["state"] == "cancelled"
    assert stopped["started_at"] is None


async def test_list_filters_and_orders_newest_first(lsp):
    first = await lsp.request("bgrun/run", {"command": "echo one", "delay": 0, "category": "first"})
    second = await lsp.request("bgrun/run", {"command": "echo two", "delay": 0, "category": "second"})
    await lsp.wait_state(first["id"], "succeeded")
    await lsp.wait_state(second["id"], "succeeded")

    every = await lsp.request("bgrun/list", {})
    by_category = await lsp.request("bgrun/list", {"category": "first"})
    limited = await lsp.request("bgrun/list", {"limit": 1})
    running = await lsp.request("bgrun/list", {"states": ["running", "scheduled"]})
    by_folder = await lsp.request("bgrun/list", {"folder": lsp.project.root.as_uri()})
    by_root = await lsp.request("bgrun/list", {"logRoot": str(lsp.project.log_root)})

    assert [job["id"] for job in every] == [second["id"], first["id"]]
    assert [job["id"] for job in by_category] == [first["id"]]
    assert [job["id"] for job in limited] == [second["id"]]
    assert running == []
    assert [job["id"] for job in by_folder] == [second["id"], first["id"]]
    assert [job["id"] for job in by_root] == [second["id"], first["id"]]
    assert every[0] == lsp.project.job(second["id"])


async def test_get_unknown_job_not_found(lsp):
    error = await lsp.error_of("bgrun/get", {"id": "999"})

    assert error.code == 4
    assert "no job 999" in error.message


async def test_rerun_reuses_job_settings(lsp):
    job = await lsp.request("bgrun/run", {"command": "echo $WORD", "delay": 0, "category": "again",
                                          "env": {"WORD": "repeated"}})
    await lsp.wait_state(job["id"], "succeeded")

    again = await lsp.request("bgrun/rerun", {"id": job["id"], "delay": 0})

    assert again["id"] != job["id"]
    for field in ("command", "cwd", "category", "env", "log_root", "environment"):
        assert again[field] == job[field], field
    await lsp.wait_state(again["id"], "succeeded")
    assert "repeated" in lsp.project.wait_footer(again["id"])


async def test_remove_rejects_active_job(lsp):
    job = await lsp.request("bgrun/run", {"command": "echo later", "delay": 600})

    error = await lsp.error_of("bgrun/remove", {"id": job["id"]})

    assert error.code == 2
    assert "stop it first" in error.message
    assert lsp.project.job(job["id"])["state"] == "scheduled"


async def test_remove_deletes_record_and_log(lsp):
    job = await lsp.request("bgrun/run", {"command": "echo bye", "delay": 0})
    await lsp.wait_state(job["id"], "succeeded")
    lsp.project.wait_footer(job["id"])

    removed = await lsp.request("bgrun/remove", {"id": job["id"]})

    assert removed["id"] == job["id"]
    assert not Path(job["log_path"]).exists()
    await lsp.wait_for(lambda: {"id": job["id"], "logRoot": str(lsp.project.log_root)} in lsp.removals,
                       "bgrun/jobRemoved")
    assert (await lsp.error_of("bgrun/get", {"id": job["id"]})).code == 4


async def test_preview_starts_nothing(lsp):
    preview = await lsp.request("bgrun/preview", {"command": "python train.py --epochs 3", "cwd": str(lsp.project.root)})

    assert preview["name"] == "train"
    assert preview["category"] == "training"
    assert preview["log_path"].startswith(str(lsp.project.log_root / "training"))
    assert await lsp.request("bgrun/list", {}) == []


async def test_start_error_names_value_and_fix(lsp):
    missing_program = await lsp.error_of("bgrun/run", {"command": "no-such-program-xyz --flag", "delay": 0})
    missing_folder = await lsp.error_of("bgrun/run", {"command": "echo", "cwd": "/no/such/folder"})

    assert missing_program.code == 3
    assert "no-such-program-xyz" in missing_program.message
    assert missing_folder.code == 3
    assert "/no/such/folder" in missing_folder.message


async def test_record_written_elsewhere_is_pushed(lsp):
    job = await lsp.request("bgrun/run", {"command": "echo pushed", "delay": 0})
    await lsp.wait_state(job["id"], "succeeded")
    store = Store(lsp.project.log_root)

    started = time.monotonic()
    written = store.update(job["id"], lambda record: record.update(reason="written by another process"))
    changed = await lsp.wait_for(lambda: next((change for change in lsp.changes_of(job["id"])
                                               if change["revision"] == written["revision"]), None),
                                 "the notification of the new revision")
    elapsed = time.monotonic() - started
    store.close()

    assert changed["reason"] == "written by another process"
    assert elapsed < 1.0, f"took {elapsed:.3f} s; the 2 s poll, not the watch, found the change"


async def test_cli_job_arrives_as_notification(lsp):
    job = await asyncio.to_thread(lsp.project.submit, "echo from the cli")

    done = await lsp.wait_state(job["id"], "succeeded")

    assert done["command"] == "echo from the cli"
    assert "running" in [change["state"] for change in lsp.changes_of(job["id"])]


async def test_progress_bar_reaches_notifications(lsp, tmp_path):
    script = tmp_path / "bar.py"
    script.write_text(
        "import sys, time\n"
        "for percent in range(0, 101, 10):\n"
        "    sys.stdout.write(f'\\r{percent:3d}%|' + '#' * (percent // 10) + f'| {percent}/100')\n"
        "    sys.stdout.flush()\n"
        "    time.sleep(0.2)\n"
        "sys.stdout.write('\\n')\n"
        "time.sleep(120)\n")
    job = await lsp.request("bgrun/run", {"argv": [sys.executable, str(script)], "delay": 0})

    def with_progress():
        return [change["progress"] for change in lsp.changes_of(job["id"]) if change.get("progress") is not None]

    await lsp.wait_for(lambda: 100.0 in with_progress(), "progress 100 in bgrun/jobChanged")
    values = with_progress()
    assert values == sorted(values)
    assert all(0 <= value <= 100 for value in values)
    assert (await lsp.request("bgrun/get", {"id": job["id"]}))["progress"] == 100.0
    assert lsp.project.job(job["id"])["progress"] is None
    await lsp.request("bgrun/stop", {"id": job["id"], "grace": 5})
