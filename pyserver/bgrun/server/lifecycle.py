"""LSP lifecycle and workspace notifications: initialize, settings changes, folder changes, shutdown."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from .server import BgrunServer

log = logging.getLogger("bgrun.server.lifecycle")


def register_lifecycle(server: BgrunServer) -> None:
    @server.feature(types.INITIALIZE)
    def on_initialize(ls: BgrunServer, params: types.InitializeParams) -> None:
        ls.initialized = True
        log.info("initialize from %s (process %s)",
                 params.client_info.name if params.client_info else "an unnamed client", params.process_id)

    @server.feature(types.INITIALIZED)
    async def on_initialized(ls: BgrunServer, params: types.InitializedParams) -> None:
        await ls.ensure_ready()
        await _register_for_settings_changes(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_settings_changed(ls: BgrunServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and "bgrun" in settings:
            settings = settings["bgrun"]
        ls.pushed_settings = settings
        ls.schedule_reload()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def on_folders_changed(ls: BgrunServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        ls.schedule_reload()

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: BgrunServer, params: None) -> None:
        log.info("shutdown received; jobs keep running")
        ls.shutdown_requested = True
        ls.stop_background_work()


async def _register_for_settings_changes(ls: BgrunServer) -> None:
    """Ask the client to send didChangeConfiguration, where it supports dynamic registration."""
    client = getattr(ls.protocol, "client_capabilities", None)
    workspace = client.workspace if client else None
    change = workspace.did_change_configuration if workspace else None
    if not (change and change.dynamic_registration):
        return
    registration = types.Registration(id="bgrun-settings", method=types.WORKSPACE_DID_CHANGE_CONFIGURATION,
                                      register_options=types.DidChangeConfigurationRegistrationOptions(section="bgrun"))
    try:
        await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
    except Exception as error:
        log.warning("client/registerCapability for settings changes failed: %s", error)
