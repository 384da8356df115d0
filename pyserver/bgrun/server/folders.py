"""Workspace folders, their `bgrun` editor settings, and which folder a job belongs to.

The editor sends settings in camelCase (section `bgrun`, one object per folder), and the engine
takes them as its editor-settings dict with the names of `config.Settings`. A job belongs to the
folder that contains its working directory (the innermost one), else to the first folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlparse

log = logging.getLogger("bgrun.server.folders")

# Editor setting (camelCase) -> engine setting (config.Settings field).
SETTING_NAMES = {
    "logRoot": "log_root",
    "delay": "delay",
    "category": "category",
    "categoryRules": "category_rules",
    "retries": "retries",
    "backoff": "backoff",
    "stopGrace": "stop_grace",
    "checkInterval": "check_interval",
    "environment": "environment",
    "envFile": "env_file",
    "killLeftovers": "kill_leftovers",
    "backend": "backend",
    "slurmOptions": "slurm_options",
}


def uri_to_path(uri: str) -> Path | None:
    """Return the local path of a `file:` URI, or None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.path)
    if parsed.netloc and parsed.netloc != "localhost":
        path = f"//{parsed.netloc}{path}"
    return Path(path) if path else None


def editor_settings(raw: Any) -> dict[str, Any]:
    """Map one `bgrun` settings object to the engine's editor-settings dict.

    Unknown keys are ignored (the extension may keep its own settings in the section). A
    `categoryRules` object of pattern -> category becomes the engine's list of pairs. Values are
    not checked here: the engine checks them when it uses them and names the setting at fault.
    """
    if not isinstance(raw, Mapping):
        if raw is not None:
            log.warning("ignored the bgrun settings: expected an object, got %s", type(raw).__name__)
        return {}
    settings: dict[str, Any] = {}
    for key, name in SETTING_NAMES.items():
        value = raw.get(key)
        if value is None or value == "":
            continue
        if name == "category_rules" and isinstance(value, Mapping):
            value = [[pattern, category] for pattern, category in value.items()]
        settings[name] = value
    return settings


@dataclass
class Folder:
    """One workspace folder: its URI as the client sent it, its path and its settings."""

    uri: str
    path: Path
    editor: dict[str, Any] = field(default_factory=dict)

    def contains(self, path: Path) -> bool:
        return path == self.path or self.path in path.parents


class Folders:
    """The workspace folders in the client's order."""

    def __init__(self) -> None:
        self.items: list[Folder] = []

    def replace(self, folders: list[Folder]) -> None:
        self.items = folders

    def owner_of(self, cwd: str | os.PathLike | None) -> Folder | None:
        """Return the innermost folder that contains `cwd`, else the first folder, else None."""
        if cwd is not None:
            path = Path(os.path.abspath(os.path.expanduser(str(cwd))))
            inside = [folder for folder in self.items if folder.contains(path)]
            if inside:
                return max(inside, key=lambda folder: len(folder.path.parts))
        return self.items[0] if self.items else None

    def find(self, text: str) -> Folder | None:
        """Return the folder named by URI or by path."""
        path = uri_to_path(text) if "://" in text else Path(os.path.abspath(os.path.expanduser(text)))
        for folder in self.items:
            if folder.uri == text or folder.path == path:
                return folder
        return None

    def default_cwd(self) -> Path:
        return self.items[0].path if self.items else Path.cwd()

    def resolve_cwd(self, cwd: str | None) -> str:
        """Return the job's working directory: relative paths start at the first folder."""
        if cwd is None:
            return str(self.default_cwd())
        path = Path(os.path.expanduser(cwd))
        return str(path if path.is_absolute() else self.default_cwd() / path)

    def context_for(self, cwd: str | None) -> dict[str, Any]:
        """Return the `editor=` and `workspace=` arguments of the engine's spawn functions."""
        folder = self.owner_of(cwd)
        if folder is None:
            return {"editor": {}, "workspace": None}
        return {"editor": dict(folder.editor), "workspace": str(folder.path)}
