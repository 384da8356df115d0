"""Exceptions that carry a message meant for the user: what failed, on which value, and the fix."""


class BgrunError(Exception):
    """Base class of errors that bgrun reports to its caller as a message."""

    exit_code = 1


class UsageError(BgrunError):
    """Invalid input from the caller: a flag, a parameter, a setting or a config file."""

    exit_code = 2


class StartError(BgrunError):
    """A job could not be started: command not found, missing folder, log folder not writable."""

    exit_code = 3


class JobNotFound(BgrunError):
    """No job with the given id exists under the log root."""

    exit_code = 4


class StopRefused(BgrunError):
    """A stop that would signal a process that is not the job's (its PID was reused)."""

    exit_code = 5
