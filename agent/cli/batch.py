"""`verity batch TASKS.jsonl`: many tasks on one loaded model, resumable, scored when the
tasks give their expected answers."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from verity.batch import BatchOutcome, read_tasks, run_batch
from verity.cli._common import add_trace_option
from verity.cli._server_options import add_server_options
from verity.cli._signals import run_interruptibly
from verity.cli.mcp import add_mcp_options
from verity.cli.run import add_model_options, add_verify_options, build_agent
from verity.errors import UserError
from verity.messages import RunResult

__all__ = ["add_commands"]

EXIT_SOME_NOT_RIGHT = 1
"""Every task ran, and at least one is wrong, unverified or failed (the summary says which)."""


def add_commands(commands: Any) -> None:
    """Add `batch` to the `verity` command's subparsers."""

    batch = commands.add_parser(
        "batch", help="run every task of a JSON Lines file; resumable, scored against answers"
    )
    batch.add_argument(
        "tasks", type=Path, help='a JSON Lines file: {"id": ..., "task": ..., "expected": ...}'
    )
    batch.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="tasks at once against a --base-url server (1; the in-process model runs one)",
    )
    batch.add_argument("-o", "--output", type=Path, help="results as JSON Lines (default stdout)")
    batch.add_argument(
        "--name",
        help="the batch's name in the trace, what resuming looks for (default: the "
        "tasks file's absolute path)",
    )
    batch.add_argument("--system", metavar="PROMPT", help="system prompt replacing Verity's")
    batch.add_argument("--max-steps", type=int, help="model calls allowed per task (8)")
    batch.set_defaults(
        json=False,
        quiet=True,
        show_reasoning=None,
        require_verified=False,
        task="batch",
        no_log=False,
    )
    add_verify_options(batch)
    add_trace_option(batch)
    add_mcp_options(batch)
    add_server_options(batch)
    add_model_options(batch)
    batch.set_defaults(handler=batch_command)


def batch_command(args: argparse.Namespace) -> int:
    """`verity batch`: run the tasks not yet completed, print each result as a JSON line and a
    summary on stderr; exit 0 when every task is right (or answered, without expected answers)."""

    tasks = read_tasks(args.tasks)
    name = args.name or str(args.tasks.resolve())
    jobs = args.jobs
    if jobs > 1 and not args.base_url:
        print(
            "verity: the in-process model runs one task at a time: -j applies to a --base-url "
            "server; running with -j 1.",
            file=sys.stderr,
        )
        jobs = 1
    agent = build_agent(args)
    output = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    tally = _Tally(len(tasks), sys.stderr)

    def record(outcome: BatchOutcome) -> None:
        print(outcome.as_json(), file=output, flush=True)
        tally.add(outcome)

    async def run_task(task: str, labels: dict[str, str]) -> RunResult:
        return await agent.run(task, labels=labels)

    async def run_all() -> list[BatchOutcome]:
        async with agent:
            if agent.store is None:
                raise UserError(
                    "verity batch resumes from the trace: drop --no-log.", field="no_log"
                )
            return await run_batch(
                tasks, run_task, batch=name, store=agent.store, jobs=jobs, on_outcome=record
            )

    try:
        outcomes = run_interruptibly(run_all)
    finally:
        if output is not sys.stdout:
            output.close()
    print(f"verity: batch {name}: {tally.summary()}", file=sys.stderr)
    counts = Counter(outcome.outcome for outcome in outcomes)
    return (
        0
        if counts["wrong"] + counts["unverified"] + counts["failed"] == 0
        else (EXIT_SOME_NOT_RIGHT)
    )


class _Tally:
    """Counts outcomes as they come and shows them on one progress line."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.counts: Counter[str] = Counter()
        self.resumed = 0
        self.started = time.monotonic()
        self._live = stream.isatty()

    def add(self, outcome: BatchOutcome) -> None:
        self.counts[outcome.outcome] += 1
        self.resumed += outcome.resumed
        line = f"[{sum(self.counts.values())}/{self.total}] {self._counts()}"
        if self._live:
            print(f"\r\x1b[2K{line}", end="", file=self.stream, flush=True)
        elif not outcome.resumed:
            print(f"verity: {line} ({outcome.id}: {outcome.outcome})", file=self.stream)

    def summary(self) -> str:
        if self._live:
            print(file=self.stream)
        elapsed = time.monotonic() - self.started
        done = sum(self.counts.values())
        resumed = f", {self.resumed} resumed from the trace" if self.resumed else ""
        return (
            f"{done} of {self.total} tasks: {self._counts()}{resumed}, "
            f"in {int(elapsed // 60)}:{int(elapsed % 60):02d}"
        )

    def _counts(self) -> str:
        order = ("right", "wrong", "answered", "unverified", "failed")
        return ", ".join(
            f"{self.counts[k]} {k}" for k in order if self.counts[k] or k in ("right", "failed")
        )
