"""Editor settings per workspace folder, re-read on didChangeConfiguration, and periodic checks."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

pytestmark = pytest.mark.asyncio


async def test_settings_change_sets_delay_and_category(start_session):
    lsp = await start_session(settings={"delay": 600, "category": "nightly"})
    first = await lsp.request("bgrun/run", {"command": "echo one"})

    await lsp.change_settings({"delay": 0, "category": "evaluation"})
    await lsp.poll_until(lambda: lsp.request("bgrun/preview", {"command": "echo two"}),
                         lambda preview: preview["category"] == "evaluation", "the new settings")
    second = await lsp.request("bgrun/run", {"command": "echo two"})
    third = await lsp.request("bgrun/run", {"command": "echo three", "delay": 0.5, "category": "given"})

    assert (first["delay"], first["category"]) == (600, "nightly")
    assert (second["delay"], second["category"]) == (0, "evaluation")
    assert (third["delay"], third["category"]) == (0.5, "given")
    await lsp.wait_state(second["id"], "succeeded")
    await lsp.request("bgrun/stop", {"id": first["id"]})


async def test_editor_setting_beats_environment_variable(start_session):
    lsp = await start_session(env={"BGRUN_DELAY": "300"})
    from_environment = await lsp.request("bgrun/preview", {"command": "echo"})

    await lsp.change_settings({"delay": 2})
    await lsp.poll_until(lambda: lsp.request("bgrun/preview", {"command": "echo"}),
                         lambda preview: preview["delay"] == 2, "the editor's delay")

    assert from_environment["delay"] == 300


async def test_log_root_setting_is_watched(start_session, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    lsp = await start_session(settings={"logRoot": str(elsewhere)})

    job = await lsp.request("bgrun/run", {"command": "echo elsewhere", "delay": 0})
    done = await lsp.wait_state(job["id"], "succeeded")

    assert done["log_root"] == str(elsewhere)
    listed = await lsp.request("bgrun/list", {"logRoot": str(elsewhere)})
    assert [item["id"] for item in listed] == [job["id"]]


async def test_check_reports_each_log_root(lsp):
    job = await lsp.request("bgrun/run", {"command": "echo checked", "delay": 0})
    await lsp.wait_state(job["id"], "succeeded")
    lsp.project.wait_footer(job["id"])

    result = await lsp.request("bgrun/check", {"repair": False})

    assert result["consistent"] is True
    assert [report["logRoot"] for report in result["reports"]] == [str(lsp.project.log_root)]
    assert result["reports"][0]["report"]["jobs"] == 1


async def test_periodic_check_notifies_drift(start_session, project):
    lsp = await start_session(settings={"checkInterval": 0.02})
    job = await lsp.request("bgrun/run", {"command": "echo drifting", "delay": 0})
    await lsp.wait_state(job["id"], "succeeded")
    project.wait_footer(job["id"])

    (project.log_root / ".bgrun" / "jobs" / f"{job['id']}.json").unlink()
    drift = await lsp.wait_for(lambda: lsp.drifts, "bgrun/driftFound")

    assert drift[0]["logRoot"] == str(project.log_root)
    kinds = [item["kind"] for item in drift[0]["report"]["drifts"]]
    assert "record_file_missing" in kinds
    assert await asyncio.to_thread(project.job, job["id"])
    assert (project.log_root / ".bgrun" / "jobs" / f"{job['id']}.json").exists()


async def test_settings_change_applies_to_next_request(lsp):
    seen = []
    for delay in range(10, 16):
        await lsp.change_settings({"delay": delay})
        preview = await lsp.request("bgrun/preview", {"command": "echo"})
        seen.append((delay, preview["delay"]))

    assert seen == [(delay, delay) for delay in range(10, 16)]


async def test_added_folder_settings_apply_to_next_request(lsp, tmp_path):
    other = tmp_path / "other"
    (other / "logs").mkdir(parents=True)
    lsp.client.set_configuration({"delay": 0}, section="bgrun", scope_uri=lsp.project.root.as_uri())
    lsp.client.set_configuration({"delay": 7}, section="bgrun", scope_uri=other.as_uri())
    added = types.WorkspaceFolder(uri=other.as_uri(), name="other")

    lsp.client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=[added], removed=[])))
    preview = await lsp.request("bgrun/preview", {"command": "echo", "cwd": str(other)})

    assert preview["delay"] == 7
