"""The bgrun language server: the job engine over LSP on stdio, for the VS Code extension.

It offers no language features. The bgrun/* requests run, list and stop jobs, and the server
pushes bgrun/jobChanged whenever a job's record changes, whoever changed it. docs/protocol.md
is the reference for client authors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bgrun serve", description="Serve the bgrun language server on stdin and stdout.")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                        help="server log level on stderr (default INFO)")
    parser.add_argument("--stdio", action="store_true",
                        help="accepted and ignored, because some editors pass it (stdio is the only transport)")
    return parser


def configure_logging(level_name: str) -> None:
    from .errors import SkipLoggedErrors

    level = getattr(logging, level_name)
    # force=True replaces the handler that `bgrun` set up at WARNING before it started the server.
    logging.basicConfig(level=level, stream=sys.stderr, force=True,
                        format="%(asctime)s bgrun serve %(levelname)s %(name)s: %(message)s")
    # pygls logs every message body at INFO, so it is quiet unless debugging.
    pygls_log = logging.getLogger("pygls")
    pygls_log.setLevel(level if level <= logging.DEBUG else logging.WARNING)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(SkipLoggedErrors())
    logging.getLogger("watchdog").setLevel(max(level, logging.INFO))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until the client sends exit or closes stdin, and return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_request:
        return exit_request.code if isinstance(exit_request.code, int) else 2
    try:
        configure_logging(args.log_level)
        from .server import serve_stdio
    except ImportError as error:
        print(f"bgrun serve: error: the language server needs pygls, lsprotocol and watchdog "
              f"({error}); install them with: pip install 'bgrun[server]'", file=sys.stderr)
        return 1
    return serve_stdio()
