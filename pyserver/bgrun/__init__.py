"""bgrun: run long commands in the background, detached, with all output in one log file."""

__version__ = "0.1.0"
