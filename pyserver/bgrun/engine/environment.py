"""The environment a job runs with: the caller's, plus an env file, added variables and an
activated interpreter environment (a venv or conda prefix).

Only the variables the user added are stored in the job's record; the rest of the environment
often holds secrets and is never stored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from .. import faults
from ..errors import UsageError
from .stop import JOB_MARKER_VARIABLE

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
# A value in matching quotes, optionally followed by a `# comment`.
QUOTED_VALUE = re.compile(r"""^(['"])((?:\\.|(?!\1).)*)\1(?:\s+#.*)?$""")


def validate_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """Check variables to add: valid names, string values, no NUL bytes."""
    result: dict[str, str] = {}
    for name, value in (env or {}).items():
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            raise UsageError(f"invalid environment variable name {name!r}: use letters, digits and '_', not starting with a digit")
        if not isinstance(value, str):
            raise UsageError(f"invalid value for environment variable {name}: expected text, got {type(value).__name__}")
        if "\0" in value:
            raise UsageError(f"invalid value for environment variable {name}: it contains a NUL byte")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"invalid value for environment variable {name}: it is not valid UTF-8 text") from None
        result[name] = value
    return result


def read_env_file(path: str | os.PathLike, cwd: str) -> dict[str, str]:
    """Read a dotenv file: `NAME=value` lines, optional `export`, quotes, `#` comments."""
    file_path = Path(os.path.expanduser(str(path)))
    if not file_path.is_absolute():
        file_path = Path(cwd) / file_path
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read env file {file_path}: {error}; fix the path in 'envFile' (bgrun.envFile) or --env-file") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = DOTENV_LINE.match(line)
        if not match:
            raise UsageError(f"invalid line {number} in env file {file_path}: {line!r}; expected NAME=value")
        name, value = match.groups()
        quoted = QUOTED_VALUE.match(value)
        if quoted:
            value = quoted.group(2)
            if quoted.group(1) == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[name] = value
    return values


def activation(prefix: str | os.PathLike, cwd: str | None = None) -> tuple[dict[str, str], str]:
    """Return the variables that activate a venv or conda prefix, and its kind ("venv" or "conda").

    A relative `prefix` is taken from `cwd` (the job's working directory), as env files are.
    """
    # A venv's bin/python is a symlink to the base interpreter, so the prefix is taken from the
    # path as given, and only then are symlinks resolved.
    root = Path(os.path.expanduser(str(prefix)))
    if not root.is_absolute():
        root = Path(cwd or os.getcwd()) / root
    root = Path(os.path.normpath(root))
    if root.is_file() and root.parent.name == "bin":
        root = root.parent.parent
    root = root.resolve()
    bin_dir = root / "bin"
    if (root / "conda-meta").is_dir():
        return {"CONDA_PREFIX": str(root), "CONDA_DEFAULT_ENV": root.name}, "conda"
    if (root / "pyvenv.cfg").is_file() and bin_dir.is_dir():
        return {"VIRTUAL_ENV": str(root)}, "venv"
    raise UsageError(
        f"invalid environment {str(prefix)!r}: it is neither a venv (no pyvenv.cfg) nor a conda "
        f"prefix (no conda-meta); pass the folder that contains bin/python"
    )


def build_environment(base: Mapping[str, str], added: Mapping[str, str], env_file_values: Mapping[str, str],
                      environment: str | None, cwd: str | None = None) -> tuple[dict[str, str], str | None]:
    """Return the job's full environment and the resolved environment prefix (or None)."""
    # A job started from inside another job must not carry the outer job's marker, or stopping
    # the outer job would also stop this one.
    env = {k: v for k, v in base.items() if k not in (faults.ENV_VAR, JOB_MARKER_VARIABLE)}
    env.update(env_file_values)
    env.update(added)
    resolved = None
    if environment:
        variables, kind = activation(environment, cwd)
        resolved = variables.get("VIRTUAL_ENV") or variables["CONDA_PREFIX"]
        env.pop("PYTHONHOME", None)
        env.update(variables)
        env["PATH"] = str(Path(resolved) / "bin") + os.pathsep + env.get("PATH", os.defpath)
    if "PYTHONUNBUFFERED" not in added and "PYTHONUNBUFFERED" not in env_file_values and "PYTHONUNBUFFERED" not in base:
        env["PYTHONUNBUFFERED"] = "1"
    return env, resolved
