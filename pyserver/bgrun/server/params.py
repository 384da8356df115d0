"""Parameters of the bgrun/* requests, as attrs classes in the style of lsprotocol.

Field names are snake_case here and camelCase on the wire (`env_file` is `envFile`). converter.py
checks each JSON type strictly, and the validators below check values. A field of None means "not
given": the engine then uses the setting (request param > editor setting > BGRUN_* variable >
bgrun.toml > default).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, NewType, Optional

import attrs

from .. import schema
from ..engine.environment import VARIABLE_NAME

JobId = NewType("JobId", str)

# Upper limits that keep values inside what the engine can store and schedule.
MAX_DELAY_SECONDS = 366 * 24 * 3600.0
MAX_RETRIES = 1000
MAX_GRACE_SECONDS = 24 * 3600.0
MAX_PATH_LENGTH = 4096
MAX_LIMIT = 1_000_000
MAX_SHOWN_CHARACTERS = 60


class FieldError(ValueError):
    """A value that has the right JSON type but is not allowed. `field` is its wire name."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def describe(value: Any) -> str:
    """Return a JSON value in words for an error message, cut to a readable length."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:MAX_SHOWN_CHARACTERS]
    if isinstance(value, str):
        return f"the string {shorten(value)}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def shorten(text: str) -> str:
    """Return `text` quoted, cut to a length an error message can show."""
    return repr(text if len(text) <= MAX_SHOWN_CHARACTERS else text[:MAX_SHOWN_CHARACTERS] + "…")


def _check_text(name: str, value: Optional[str], max_length: Optional[int] = None) -> None:
    if value is None:
        return
    if not value.strip():
        raise FieldError(name, "must not be empty or blank; leave the field out instead")
    if "\0" in value:
        raise FieldError(name, "contains a NUL byte, which no file name or program can take")
    if max_length is not None and len(value) > max_length:
        raise FieldError(name, f"is longer than {max_length} characters")


def _check_seconds(name: str, value: Optional[float], maximum: float) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or value > maximum:
        raise FieldError(name, f"must be a number of seconds from 0 to {maximum:.0f}, got {describe(value)}")


def _text(max_length: Optional[int] = None):
    def validate(instance, attribute, value):
        _check_text(to_camel(attribute.name), value, max_length)
    return validate


def to_camel(name: str) -> str:
    """Return the wire name of a field: `env_file` is `envFile`."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


@attrs.define(frozen=True)
class RunParams:
    """Params of bgrun/run and bgrun/preview: what to run and how, with exactly one of command and argv."""

    command: Optional[str] = attrs.field(default=None, validator=_text())
    argv: Optional[List[str]] = None
    cwd: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))
    category: Optional[str] = attrs.field(default=None, validator=_text())
    name: Optional[str] = attrs.field(default=None, validator=_text())
    delay: Optional[float] = None
    retries: Optional[int] = None
    env: Optional[Dict[str, str]] = None
    env_file: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))
    environment: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))

    def __attrs_post_init__(self) -> None:
        if (self.command is None) == (self.argv is None):
            raise FieldError("command", "give exactly one of 'command' (a shell command line) and 'argv' (a list of words)")
        if self.argv is not None:
            if not self.argv or not self.argv[0]:
                raise FieldError("argv", "must be a non-empty list whose first word names the program")
            if any("\0" in word for word in self.argv):
                raise FieldError("argv", "contains a NUL byte, which no program can receive")
        _check_seconds("delay", self.delay, MAX_DELAY_SECONDS)
        if self.retries is not None and not 0 <= self.retries <= MAX_RETRIES:
            raise FieldError("retries", f"must be a whole number from 0 to {MAX_RETRIES}, got {describe(self.retries)}")
        for name, value in (self.env or {}).items():
            if not VARIABLE_NAME.match(name):
                raise FieldError("env", f"has an invalid variable name {shorten(name)}: use letters, digits "
                                        f"and '_', not starting with a digit")
            if "\0" in value:
                raise FieldError("env", f"value of {name} contains a NUL byte")


def _check_job_id(instance, attribute, value: str) -> None:
    if not (value.isdigit() and 0 < len(value) <= 18 and int(value) > 0):
        raise FieldError("id", f"must be a job id, a positive whole number of at most 18 digits such as "
                               f"\"12\", not {shorten(value)}")


@attrs.define(frozen=True)
class JobParams:
    """Params of bgrun/get and bgrun/remove: one job, by id, under one log root."""

    id: JobId = attrs.field(validator=_check_job_id)
    log_root: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))


@attrs.define(frozen=True)
class StopParams:
    """Params of bgrun/stop: the job, and the seconds between SIGTERM and SIGKILL (default: the job's)."""

    id: JobId = attrs.field(validator=_check_job_id)
    log_root: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))
    grace: Optional[float] = None

    def __attrs_post_init__(self) -> None:
        _check_seconds("grace", self.grace, MAX_GRACE_SECONDS)


@attrs.define(frozen=True)
class RerunParams:
    """Params of bgrun/rerun: the job to run again, and the timer of the new job."""

    id: JobId = attrs.field(validator=_check_job_id)
    log_root: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))
    delay: Optional[float] = None

    def __attrs_post_init__(self) -> None:
        _check_seconds("delay", self.delay, MAX_DELAY_SECONDS)


@attrs.define(frozen=True)
class ListParams:
    """Params of bgrun/list: optional filters."""

    states: Optional[List[str]] = None
    category: Optional[str] = attrs.field(default=None, validator=_text())
    folder: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))
    log_root: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))
    limit: Optional[int] = None

    def __attrs_post_init__(self) -> None:
        for state in self.states or []:
            if state not in schema.STATES:
                raise FieldError("states", f"has an unknown state {shorten(state)}; known states: {', '.join(schema.STATES)}")
        if self.limit is not None and not 1 <= self.limit <= MAX_LIMIT:
            raise FieldError("limit", f"must be a whole number from 1 to {MAX_LIMIT}, got {describe(self.limit)}")


@attrs.define(frozen=True)
class CheckParams:
    """Params of bgrun/check: the repair flag, and one log root or every watched one."""

    repair: bool = False
    log_root: Optional[str] = attrs.field(default=None, validator=_text(MAX_PATH_LENGTH))
