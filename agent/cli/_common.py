"""What the command modules share: exit codes and the trace-database option."""

from __future__ import annotations

import argparse
from pathlib import Path

from verity.settings import default_trace_path
from verity.trace.store import TraceStore

EXIT_USER_ERROR = 2
EXIT_MODEL_ERROR = 3
EXIT_RUN_ERROR = 4
EXIT_INTERRUPTED = 130


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-db", type=Path, help="trace database (default: $VERITY_TRACE_DB or user data dir)"
    )


def open_store(args: argparse.Namespace) -> TraceStore:
    """The trace database the command's `--trace-db` (or the default) names."""
    return TraceStore(args.trace_db or default_trace_path())
