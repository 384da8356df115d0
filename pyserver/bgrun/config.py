"""Settings and the log-root rule, resolved the same way for the CLI, the server and the extension.

Precedence, highest first: a per-run flag or request parameter, the editor setting, a `BGRUN_*`
environment variable, the nearest `bgrun.toml` (the project root), then the built-in default.

The log root is the first of: an explicit value (flag, parameter, editor setting); `BGRUN_LOG_ROOT`;
`log_root` in `bgrun.toml` (relative to that file); `logs/` in the nearest of the working directory
and its parents that holds a `logs/` folder or a `.git`, searching no higher than the workspace
folder or the home directory; else `logs/` in the working directory.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python before 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from .errors import UsageError

CONFIG_FILE = "bgrun.toml"
DEFAULT_CATEGORIES = ("model_dev", "training", "testing")

# Glob patterns matched against the command name and against each word of the command line.
DEFAULT_CATEGORY_RULES: tuple[tuple[str, str], ...] = (
    ("pytest", "testing"),
    ("py.test", "testing"),
    ("test_*", "testing"),
    ("*_test", "testing"),
    ("tests", "testing"),
    ("unittest", "testing"),
    ("tox", "testing"),
    ("nox", "testing"),
    ("train", "training"),
    ("train_*", "training"),
    ("*_train", "training"),
    ("*.train", "training"),
    ("finetune*", "training"),
    ("fine_tune*", "training"),
)


@dataclass
class Settings:
    """Every setting a run can take, after precedence is applied."""

    log_root: str | None = None
    delay: float = 1.0
    category: str = "model_dev"
    category_rules: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_CATEGORY_RULES))
    retries: int = 0
    backoff: float = 5.0
    backoff_factor: float = 2.0
    backoff_max: float = 300.0
    stop_grace: float = 10.0
    kill_leftovers: bool = True
    check_interval: float = 10.0
    environment: str | None = None
    env_file: str | None = None
    backend: str = "local"
    slurm_options: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


SETTING_NAMES = tuple(f.name for f in fields(Settings))

# Environment variable of each setting; category rules take a JSON list of [pattern, category].
ENV_VARS = {name: "BGRUN_" + name.upper() for name in SETTING_NAMES}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert a raw setting to its type, or raise UsageError naming the value and its source."""
    default = getattr(Settings(), name)
    try:
        if name == "category_rules":
            if isinstance(value, str):
                value = json.loads(value)
            rules = []
            for rule in value:
                if isinstance(rule, Mapping):
                    rules.append((str(rule["pattern"]), str(rule["category"])))
                else:
                    pattern, category = rule
                    rules.append((str(pattern), str(category)))
            return rules
        if name == "slurm_options":
            return _coerce_word_list(value)
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, float):
            number = float(value)
            if number != number or number < 0 or number == float("inf"):
                raise ValueError(value)
            return number
        if isinstance(default, int):
            number = int(value)
            if number < 0:
                raise ValueError(value)
            return number
        if value is None or value == "":
            return None if default is None else default
        return str(value)
    except (TypeError, ValueError, KeyError) as error:
        kind = type(default).__name__ if default is not None else "text"
        if name == "category_rules":
            kind = 'a list of {pattern, category} pairs'
        if name == "slurm_options":
            kind = "a list of sbatch options, or one string of them"
        raise UsageError(
            f"invalid value {value!r} for setting '{name}' in {source}: expected {kind}"
            + (" that is not negative" if kind in ("int", "float") else "")
            + f" (from {error.__class__.__name__})"
        ) from None


def _coerce_word_list(value: Any) -> list[str]:
    """Convert a list of words, a JSON list or a shell-quoted string of words to a list of words."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else shlex.split(text)
    if not isinstance(value, (list, tuple)) or not all(isinstance(word, str) for word in value):
        raise ValueError(value)
    return list(value)


def find_upward(start: Path, predicate, workspace: Path | None = None) -> Path | None:
    """Return the nearest of `start` and its parents that satisfies `predicate`.

    The search stops after the workspace folder or the home directory, whichever comes first,
    and never looks at the filesystem root.
    """
    home = Path.home().resolve()
    stops = {home}
    if workspace is not None:
        stops.add(workspace.resolve())
    current = start.resolve()
    while True:
        if current.parent == current:
            return None
        if predicate(current):
            return current
        if current in stops:
            return None
        current = current.parent


def find_config_file(cwd: Path, workspace: Path | None = None) -> Path | None:
    folder = find_upward(cwd, lambda d: (d / CONFIG_FILE).is_file(), workspace)
    return folder / CONFIG_FILE if folder else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read `bgrun.toml`: settings at the top level or under a `[bgrun]` table."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read config file {path}: {error}; fix or remove the file") from None
    if isinstance(data.get("bgrun"), dict):
        table = data.pop("bgrun")
        data = {**data, **table}
    unknown = sorted(set(data) - set(SETTING_NAMES))
    if unknown:
        raise UsageError(
            f"unknown setting {unknown[0]!r} in {path}; known settings: {', '.join(SETTING_NAMES)}"
        )
    if data.get("log_root"):
        data["log_root"] = str((path.parent / str(data["log_root"])).resolve())
    for key in ("environment", "env_file"):
        if data.get(key):
            data[key] = str((path.parent / str(data[key])).expanduser())
    return data


def resolve_settings(
    cwd: str | os.PathLike,
    *,
    overrides: Mapping[str, Any] | None = None,
    editor: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    workspace: str | os.PathLike | None = None,
) -> Settings:
    """Apply the precedence to every setting and return the result.

    `overrides` are per-run flags or request parameters, `editor` the editor's settings; a value of
    None in either means "not set".
    """
    environ = os.environ if environ is None else environ
    cwd_path = Path(cwd)
    workspace_path = Path(workspace) if workspace else None
    settings = Settings()

    layers: list[tuple[str, Mapping[str, Any]]] = []
    config_path = find_config_file(cwd_path, workspace_path)
    if config_path is not None:
        layers.append((str(config_path), read_config_file(config_path)))
    layers.append(
        ("the environment", {n: environ[v] for n, v in ENV_VARS.items() if environ.get(v, "") != ""})
    )
    layers.append(("the editor settings", {k: v for k, v in (editor or {}).items() if v not in (None, "")}))
    layers.append(("the run's options", {k: v for k, v in (overrides or {}).items() if v is not None}))

    for source, values in layers:
        for name, value in values.items():
            if name not in SETTING_NAMES:
                raise UsageError(f"unknown setting {name!r} in {source}")
            setattr(settings, name, _coerce(name, value, source))

    settings.log_root = str(resolve_log_root(cwd_path, settings.log_root, workspace_path))
    return settings


def resolve_log_root(cwd: Path, explicit: str | None = None, workspace: Path | None = None) -> Path:
    """Return the log root for a job that runs in `cwd` (the rule in the module docstring).

    `explicit` is the value after precedence, so it already covers the flag, the editor setting,
    `BGRUN_LOG_ROOT` and `bgrun.toml`.
    """
    if explicit:
        root = Path(os.path.expanduser(explicit))
        return (root if root.is_absolute() else cwd / root).resolve()
    found = find_upward(cwd, lambda d: (d / "logs").is_dir() or (d / ".git").exists(), workspace)
    return ((found or cwd) / "logs").resolve()
