"""`verity logs`, `show`, `export` and `replay`: read runs back from the trace database."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from verity.cli._common import add_trace_option, read_store
from verity.cli._show import print_run
from verity.cli._signals import run_interruptibly
from verity.cli.stats import print_usage
from verity.errors import UserError
from verity.messages import verification_label
from verity.settings import default_trace_path
from verity.terminal import printable
from verity.trace._provenance import versions
from verity.trace.datasette import datasette_metadata
from verity.trace.export import otlp_json_text
from verity.trace.query import RunFilter, find_runs, full_run, parse_since, resolve_run_id
from verity.trace.store import TraceStore

EXIT_REPLAY_DIFFERS = 1
_RUN_HELP = "a run id from `verity logs`, its start or its end (4f9a2c), or last"


def add_commands(commands: Any) -> None:
    """Add `logs`, `show` and `export` to the `verity` command's subparsers."""
    logs = commands.add_parser("logs", help="list runs from the trace database, newest first")
    logs.add_argument(
        "action",
        nargs="?",
        choices=["path"],
        help="path: print where the trace database is, and nothing else",
    )
    logs.add_argument("-n", "--limit", type=int, default=20, help="how many runs (20)")
    logs.add_argument(
        "-q",
        "--query",
        metavar="WORDS",
        help="full-text search in tasks, answers, reasoning and tool results",
    )
    logs.add_argument("--status", help="completed, failed, limit_exceeded, cancelled, ...")
    logs.add_argument("--model", help="runs whose model name contains this")
    logs.add_argument("--tool", help="runs that called this tool")
    logs.add_argument(
        "--verified",
        choices=["yes", "no", "unchecked"],
        help="yes: verified; no: a verifier ran and did not confirm it; unchecked: none ran",
    )
    logs.add_argument("--since", metavar="WHEN", help="a date (2026-11-28) or an age (2h, 7d)")
    logs.add_argument("--samples", action="store_true", help="include consensus attempts")
    logs.add_argument("--json", action="store_true", help="one JSON array of run summaries")
    logs.add_argument(
        "--usage",
        action="store_true",
        help="tokens per run and their cost on each priced API (`verity stats --prices`)",
    )
    add_trace_option(logs)
    logs.set_defaults(handler=_logs_command)

    show = commands.add_parser("show", help="show one run as a tree, with the full text")
    show.add_argument("run_id", help=_RUN_HELP)
    show.add_argument("--reasoning", action="store_true", help="unfold the model's reasoning")
    show.add_argument("--json", action="store_true", help="everything recorded, as JSON")
    add_trace_option(show)
    show.set_defaults(handler=_show_command)

    export = commands.add_parser("export", help="export runs as JSON lines or OTLP JSON spans")
    export.add_argument("run_id", nargs="?", help=f"{_RUN_HELP} (or --all)")
    export.add_argument("--all", action="store_true", help="every run")
    export.add_argument("--format", choices=["jsonl", "otlp-json"], default="jsonl")
    export.add_argument(
        "--datasette-metadata",
        action="store_true",
        help="print Datasette metadata (table descriptions, canned queries)",
    )
    add_trace_option(export)
    export.set_defaults(handler=_export_command)


def add_replay_command(commands: Any) -> None:
    """Add `replay`: apart from the others, as its MCP options import the MCP SDK."""
    from verity.cli.mcp import add_mcp_options

    replay = commands.add_parser(
        "replay", help="re-run a run on its recorded model outputs, executing the tools again"
    )
    replay.add_argument("run_id", help=_RUN_HELP)
    add_trace_option(replay)
    add_mcp_options(replay)
    replay.set_defaults(handler=_replay_command, mcp_sampling=False)


def _logs_command(args: argparse.Namespace) -> int:
    if args.action == "path":
        print(args.trace_db or default_trace_path())
        return 0
    if args.limit < 1:
        raise UserError(f"--limit must be at least 1, not {args.limit}.", field="limit")
    where = RunFilter(
        status=args.status,
        model=args.model,
        tool=args.tool,
        verified=args.verified,
        since=args.since and parse_since(args.since),
        query=args.query,
        samples=args.samples,
    )
    store = read_store(args)
    rows = find_runs(store, where, limit=args.limit)
    if args.usage:
        return print_usage(store, rows, as_json=args.json)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(
        f"{'RUN':<22}  {'STARTED (UTC)':<16}  {'STATUS':<14}  {'VERIFICATION':<12}  "
        f"{'STEPS':>5}  {'TOKENS IN/OUT':>13}  TASK -> ANSWER"
    )
    for row in rows:
        tokens = (
            "-" if row["input_tokens"] is None else f"{row['input_tokens']}/{row['output_tokens']}"
        )
        started = (row["started_at"] or "")[:16].replace("T", " ")
        task = " ".join((row["task"] or "").split())
        answer = " ".join((row["answer"] or row["error"] or "").split())
        _print(
            f"{row['id']:<22}  {started:<16}  {row['status']:<14}  "
            f"{verification_label(row['verified']):<12}  {row['steps']:>5}  {tokens:>13}  "
            f"{_cut(task, 50)} -> {_cut(answer, 40)}"
        )
    if not rows:
        print("(no runs match)" if _filtered(args) else "(no runs yet)", file=sys.stderr)
    return 0


def _print(text: str) -> None:
    print(printable(text))  # what servers and models wrote may hold escape sequences


def _filtered(args: argparse.Namespace) -> bool:
    return any([args.status, args.model, args.tool, args.verified, args.since, args.query])


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _run(store: TraceStore, run_id: str) -> dict[str, Any]:
    record = full_run(store, resolve_run_id(store, run_id))
    if record is None:
        raise UserError(f"No run {run_id!r} in {store.path}. List runs with `verity logs`.")
    return record


def _show_command(args: argparse.Namespace) -> int:
    record = _run(read_store(args), args.run_id)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print_run(record, reasoning=args.reasoning)
    return 0


def _export_command(args: argparse.Namespace) -> int:
    store = read_store(args)
    if args.datasette_metadata:
        print(json.dumps(datasette_metadata(store.path.stem), indent=2))
        return 0
    if (args.run_id is None) == (not args.all):
        raise UserError("Name one run to export, or pass --all.", field="run_id")
    ids = (
        [args.run_id]
        if args.run_id
        else [r["id"] for r in store.read("select id from runs order by started_at")]
    )
    # one run read, written and dropped at a time: memory stays bounded however many runs
    runs = (_run(store, run_id) for run_id in ids)
    if args.format == "jsonl":
        for record in runs:
            print(json.dumps(record))
    else:
        for text in otlp_json_text(runs, version=versions()["verity"]):
            sys.stdout.write(text)
        sys.stdout.write("\n")
    return 0


def _replay_command(args: argparse.Namespace) -> int:
    # the agent loop and its tools: imported here, so that `logs` and `show` start fast
    from verity.agent import Agent
    from verity.cli.mcp import configured_servers, terminal_approvals
    from verity.replay import RecordedModel, replay_run

    store = read_store(args)
    record = store.run(resolve_run_id(store, args.run_id))
    if record is None:
        raise UserError(f"No run {args.run_id!r} in {store.path}. List runs with `verity logs`.")
    # the tools of `verity run` with the same options; the trace is not written to again
    mcp = configured_servers(args)
    agent = Agent(
        model=RecordedModel("replay", []),
        mcp=mcp,
        approvals=terminal_approvals(args, mcp),
        mcp_sampling=args.mcp_sampling,
        allow=tuple(args.allow),
        trace=False,
    )
    try:
        result = run_interruptibly(lambda: replay_run(record, agent.toolsets))
    finally:
        agent.close()
    difference = result.difference
    if difference is None:
        print(
            f"run {result.run_id}: all {result.compared} tool results as recorded "
            f"(replay ended: {result.ended})"
        )
        return 0
    arguments = json.dumps(difference.arguments, ensure_ascii=False)
    _print(
        f"run {result.run_id}: step {difference.step} differs, after {result.compared} "
        f"matching tool results: {difference.tool_name}({arguments})"
    )
    recorded = "(no such call)" if difference.recorded is None else difference.recorded
    _print(f"  recorded: {recorded}{'  (error)' if difference.recorded_error else ''}")
    _print(f"  replayed: {difference.replayed}{'  (error)' if difference.replayed_error else ''}")
    return EXIT_REPLAY_DIFFERS
