"""What the command modules share: exit codes and the trace-database option."""

# ruff: noqa: T201 - the command line: printing is its job

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the trace store is imported by the commands that open it, not by --help
    from verity.hooks import RunHooks
    from verity.trace.recorder import TraceRecorder
    from verity.trace.store import TraceStore

EXIT_USER_ERROR = 2
EXIT_MODEL_ERROR = 3
EXIT_RUN_ERROR = 4
EXIT_UNVERIFIED = 5
"""A verifier ran and did not confirm the answer (printed anyway unless --require-verified)."""
EXIT_TRACE_ERROR = 6
"""The answer was printed, but the run's trace could not be (completely) written."""
EXIT_REJECTED = 7
"""The answer checks refused the answer in every verify round (status `rejected`): no answer,
or facts nothing the run saw holds. It is not printed; `--json` and the trace keep it."""
EXIT_TOOLS_UNAVAILABLE = 8
"""A configured MCP server did not start, or all its tools were withheld (status
`tools_unavailable`): the answer may be made up. It is not printed; `--json` and the trace keep
it."""
EXIT_INTERRUPTED = 130


class _GivenPath(argparse.Action):
    """Stores the path and notes that the command line gave it (not a config or default)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-db",
        type=Path,
        action=_GivenPath,
        help="trace database (default: $VERITY_TRACE_DB or user data dir)",
    )


def open_store(args: argparse.Namespace) -> TraceStore:
    """The trace database the command's `--trace-db` (or the default) names."""
    from verity.settings import default_trace_path
    from verity.trace.store import TraceStore

    return TraceStore(args.trace_db or default_trace_path())


def read_store(args: argparse.Namespace) -> TraceStore:
    """The trace database a reading command (`logs`, `show`, `replay`, `export`) reads: an
    `--trace-db` on the command line that names no file is a mistake, not a new, empty database
    (the default one may not exist yet: then there are no runs).

    Raises:
        UserError: `--trace-db` names no file.
    """
    from verity.errors import UserError

    given = getattr(args, "trace_db_given", False)
    if given and args.trace_db is not None and not Path(args.trace_db).exists():
        raise UserError(
            f"No trace database at {args.trace_db}: check the path (`verity run --trace-db` "
            "writes one there), or leave --trace-db out for the default one."
        )
    return open_store(args)


def run_recorder(args: argparse.Namespace) -> TraceRecorder | None:
    """What records a run into the trace database; None with `--no-log`."""
    from verity.trace.recorder import TraceRecorder

    return None if args.no_log else TraceRecorder(open_store(args))


def run_hooks(recorder: TraceRecorder | None, printer: RunHooks | None) -> list[RunHooks]:
    """The recorder, the live OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (after the
    recorder: it reads the run back), and the progress printer."""
    from verity.trace._provenance import versions
    from verity.trace.otlp import live_export

    export = live_export(recorder.store, version=versions()["verity"]) if recorder else None
    return [hook for hook in (recorder, export, printer) if hook is not None]


def trace_outcome(recorder: TraceRecorder, run_id: str) -> int:
    """0 when the run's trace was written; else say why on stderr and return 5."""
    if recorder.failure is None:
        return 0
    print(
        f"verity: warning: the trace of run {run_id} in {recorder.store.path} is incomplete: "
        f"{recorder.failure}",
        file=sys.stderr,
    )
    return EXIT_TRACE_ERROR
