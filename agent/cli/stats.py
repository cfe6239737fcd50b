"""`verity stats`: tokens per day and model, and what they would have cost on each priced API."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import json
from typing import Any

from verity.cli._common import add_trace_option, open_store
from verity.pricing import Price, load_prices, prices_path
from verity.terminal import printable
from verity.trace.query import parse_since
from verity.trace.store import TraceStore
from verity.trace.usage import priced, usage_by_day, usage_of_runs

__all__ = ["add_commands", "cost_columns", "print_usage"]


def add_commands(commands: Any) -> None:
    """Add `stats` to the `verity` command's subparsers."""
    stats = commands.add_parser(
        "stats", help="tokens per day and model, and their cost on each priced API"
    )
    stats.add_argument(
        "--since",
        metavar="WHEN",
        default="7d",
        help="a date (2026-11-28) or an age (2h, 7d); default 7d",
    )
    stats.add_argument("--json", action="store_true", help="one JSON object")
    stats.add_argument(
        "--prices", action="store_true", help="print the price table and the file to edit"
    )
    add_trace_option(stats)
    stats.set_defaults(handler=_stats_command)


_Column = tuple[str, str, str]
"""A table column: its title, the row key it shows, and its format (width and alignment)."""
_USAGE_COLUMNS: list[_Column] = [
    ("CALLS", "model_calls", ">6"),
    ("TOKENS IN", "input_tokens", ">10"),
    ("CACHED", "cached_input_tokens", ">9"),
    ("OUT", "output_tokens", ">9"),
]
_DAY_COLUMNS = [
    ("DAY", "day", "<10"),
    ("MODEL", "model", "<30"),
    ("RUNS", "runs", ">5"),
    *_USAGE_COLUMNS,
]
_RUN_COLUMNS = [("RUN", "id", "<22"), ("MODEL", "model", "<30"), *_USAGE_COLUMNS]


def _print_table(
    columns: list[_Column], rows: list[dict[str, Any]], prices: dict[str, Price]
) -> None:
    """The rows under their titles, then what they cost on each priced API."""
    titles = [format(title, spec) for title, _, spec in columns]
    print("  ".join([*titles, *(f"{c:>12}" for c in cost_columns(prices))]))
    for row in rows:
        cells = [
            format(("-" if row[key] in (None, "") else str(row[key]))[:30], spec)
            for _, key, spec in columns
        ]
        costs = [f"{row['cost_usd'][name]:>12.4f}" for name in prices]
        print(printable("  ".join([*cells, *costs])))


def cost_columns(prices: dict[str, Price]) -> list[str]:
    """Column titles of the priced APIs: `$ NAME`."""
    return [f"$ {name}" for name in prices]


def _stats_command(args: argparse.Namespace) -> int:
    prices = load_prices()
    if args.prices:
        return _print_prices(prices, as_json=args.json)
    rows = usage_by_day(open_store(args), since=parse_since(args.since))
    for row in rows:
        row["cost_usd"] = priced(row, prices)
    total = _total(rows, prices)
    if args.json:
        print(json.dumps({"since": args.since, "days": rows, "total": total}))
        return 0
    _print_table(_DAY_COLUMNS, [*rows, total], prices)
    unknown = sum(row["calls_without_counts"] or 0 for row in rows)
    if unknown:
        print(f"({unknown} model calls had no token counts from their backend: not priced)")
    return 0


def _total(rows: list[dict[str, Any]], prices: dict[str, Price]) -> dict[str, Any]:
    keys = (
        "runs",
        "model_calls",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "calls_without_counts",
    )
    total: dict[str, Any] = {"day": "total", "model": ""}
    total |= {key: sum(row[key] or 0 for row in rows) for key in keys}
    total["cost_usd"] = priced(total, prices)
    return total


def _print_prices(prices: dict[str, Price], *, as_json: bool) -> int:
    if as_json:
        print(
            json.dumps(
                {
                    "file": str(prices_path()),
                    "prices": {
                        n: {
                            "input": p.input,
                            "cached_input": p.cached_input,
                            "output": p.output,
                            "note": p.note,
                        }
                        for n, p in prices.items()
                    },
                }
            )
        )
        return 0
    print(f"{'API':<20}  {'INPUT':>7}  {'CACHED':>7}  {'OUTPUT':>7}  (USD per million tokens)")
    for name, price in prices.items():
        cached = "-" if price.cached_input is None else f"{price.cached_input:.2f}"
        print(f"{name:<20}  {price.input:>7.2f}  {cached:>7}  {price.output:>7.2f}  {price.note}")
    print(f"Edit your own prices in {prices_path()} (a table there replaces the default one).")
    return 0


def print_usage(store: TraceStore, runs: list[dict[str, Any]], *, as_json: bool) -> int:
    """`verity logs --usage`: each run's model calls and tokens, priced on each API."""
    prices = load_prices()
    usage = usage_of_runs(store, [run["id"] for run in runs])
    empty = {
        "model_calls": 0,
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "output_tokens": 0,
        "calls_without_counts": 0,
    }
    rows = []
    for run in runs:
        row = {"id": run["id"], "started_at": run["started_at"], "model": run["model"]}
        row |= usage.get(run["id"], empty)
        row["cost_usd"] = priced(row, prices)
        rows.append(row)
    if as_json:
        print(json.dumps(rows))
        return 0
    _print_table(_RUN_COLUMNS, rows, prices)
    return 0
