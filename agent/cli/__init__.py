"""The `verity` command: argv → settings → run → print. Each VerityError maps to an exit code.

One module per command family: `run` (run a task), `traces` (logs, show), `mcp` (mcp list, call,
read, prompt; MCP options of run), `model` (options for an OpenAI-compatible server). Each adds
its parsers with `add_commands(commands)` and sets the `handler` its commands call.
"""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from verity.cli import mcp, run, traces
from verity.cli._common import EXIT_INTERRUPTED, EXIT_MODEL_ERROR, EXIT_RUN_ERROR, EXIT_USER_ERROR
from verity.errors import ModelError, RunError, UserError, VerityError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verity",
        description="Run a local reasoning model as a dependable tool-using agent.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_commands(commands)
    traces.add_commands(commands)
    mcp.add_mcp_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `verity` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except UserError as exc:
        print(f"verity: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModelError as exc:
        print(f"verity: model error: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    except RunError as exc:
        print(f"verity: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except VerityError as exc:
        print(f"verity: error: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except KeyboardInterrupt:
        print("verity: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
