"""Warm starts: time to first token of `verity run` with the 14 filesystem tools, cold vs warm.

    PYTHONPATH=. python bench/warm_start.py [--model embedded] [--runs 2]

Runs `verity run` as a user runs it (a subprocess, the reference filesystem MCP server started
by `npx -y @modelcontextprotocol/server-filesystem DIR` from an mcpServers config, `--allow
'filesystem__*'`), first with an empty prefix cache directory (cold), then again with the
same directory (warm), and once more with `--no-prefix-cache` (off: what every run cost
before). Each row is one process; the cold and warm runs alternate over `--runs` pairs, each
pair with its own empty cache directory, so both see the same machine load.

Time to first token (TTFT) is measured two ways, both from the trace the run wrote:
- process: from launching `verity run` to its first generated token (step 1's start plus its
  prompt evaluation): Python start, imports, model load, MCP server start and the prompt;
- prompt: the first model call's prompt evaluation alone (`prefill_s`), which is all that the
  prefix cache changes.
Target: warm TTFT <= 10% of cold.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILESYSTEM_SERVER = "@modelcontextprotocol/server-filesystem"
TASK = "How many lines does the file notes.txt in {directory} have? Use the tools."


@dataclass
class Sample:
    """One `verity run` process."""

    mode: str
    process_ttft_s: float
    prefill_s: float
    prompt_tokens: int
    evaluated_tokens: int
    wall_s: float
    exit_code: int


def workspace(root: Path) -> tuple[Path, Path]:
    """A directory for the filesystem server to serve, and the mcpServers config for it."""
    served = root / "files"
    served.mkdir()
    (served / "notes.txt").write_text("first line\nsecond line\nthird line\n")
    (served / "todo.md").write_text("- warm starts\n- benchmarks\n")
    config = root / "mcp.json"
    server = {"command": "npx", "args": ["-y", FILESYSTEM_SERVER, str(served)]}
    config.write_text(json.dumps({"mcpServers": {"filesystem": server}}))
    return served, config


def run_once(mode: str, *, model: str, config: Path, served: Path, cache: Path) -> Sample:
    """One `verity run` in a process of its own; its timings from the trace it wrote."""
    trace = cache.parent / f"trace-{mode}-{time.monotonic_ns()}.db"
    command = [
        sys.executable,
        "-m",
        "verity",
        "run",
        TASK.format(directory=served),
        "--model",
        model,
        "--mcp-config",
        str(config),
        "--allow",
        "filesystem__*",
        "--max-steps",
        "3",
        "--quiet",
        "--trace-db",
        str(trace),
        "--prefix-cache-dir",
        str(cache),
    ]
    if mode == "off":
        command.append("--no-prefix-cache")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    launched, started = time.time(), time.perf_counter()
    finished = subprocess.run(command, env=environment, capture_output=True, timeout=1800)
    wall = time.perf_counter() - started
    if "Traceback" in finished.stderr.decode(errors="replace"):
        sys.exit(f"verity run failed:\n{finished.stderr.decode(errors='replace')}")
    with sqlite3.connect(trace) as db:
        step_start, prefill, prompt, evaluated = db.execute(
            "select s.started_at, m.prefill_s, m.input_tokens, m.input_tokens_evaluated "
            "from model_calls m join steps s on s.run_id = m.run_id and s.step = m.step "
            "where m.purpose = 'agent' order by m.rowid limit 1"
        ).fetchone()
    first_token = datetime.fromisoformat(step_start).timestamp() + prefill
    return Sample(
        mode, first_token - launched, prefill, prompt, evaluated, wall, finished.returncode
    )


def tool_count(config: Path) -> int:
    """How many tools the configured servers offer, as `verity mcp list` sees them."""
    listed = subprocess.run(
        [sys.executable, "-m", "verity", "mcp", "list", "--mcp-config", str(config), "--json"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return sum(len(server["tools"]) for server in json.loads(listed.stdout)["servers"])


def table(samples: list[Sample]) -> None:
    """Print every run, then the medians per mode and the warm/cold ratios."""
    print(
        f"{'mode':<5} {'TTFT process s':>14} {'TTFT prompt s':>13} {'prompt tok':>10} "
        f"{'evaluated':>9} {'wall s':>7} {'exit':>4}"
    )
    for s in samples:
        print(
            f"{s.mode:<5} {s.process_ttft_s:>14.2f} {s.prefill_s:>13.2f} {s.prompt_tokens:>10} "
            f"{s.evaluated_tokens:>9} {s.wall_s:>7.1f} {s.exit_code:>4}"
        )
    medians = {}
    for mode in ("cold", "warm", "off"):
        chosen = [s for s in samples if s.mode == mode]
        if chosen:
            medians[mode] = (
                statistics.median(s.process_ttft_s for s in chosen),
                statistics.median(s.prefill_s for s in chosen),
            )
    print()
    print(f"{'median':<6} {'TTFT process s':>14} {'TTFT prompt s':>13}")
    for mode, (process, prompt) in medians.items():
        print(f"{mode:<6} {process:>14.2f} {prompt:>13.2f}")
    if "cold" in medians and "warm" in medians:
        cold, warm = medians["cold"], medians["warm"]
        print(
            f"\nwarm / cold, TTFT process: {warm[0] / cold[0]:.1%}   "
            f"TTFT prompt: {warm[1] / cold[1]:.1%}   (target <= 10%)"
        )


def main() -> None:
    """Measure cold, warm and off runs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="what `verity run --model` gets")
    parser.add_argument("--runs", type=int, default=2, help="cold/warm pairs (2)")
    parser.add_argument("--no-off", action="store_true", help="skip the --no-prefix-cache run")
    args = parser.parse_args()
    if shutil.which("npx") is None:
        sys.exit("npx is not installed: the benchmark starts the reference filesystem server")
    with tempfile.TemporaryDirectory(prefix="verity-warm-") as temporary:
        root = Path(temporary)
        served, config = workspace(root)
        # npx fetches the server once; that download is no part of any run measured here
        subprocess.run(
            ["npx", "-y", FILESYSTEM_SERVER, str(served)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=600,
            check=False,
        )
        print(f"filesystem server: {tool_count(config)} tools", file=sys.stderr)
        samples = []
        for pair in range(args.runs):
            cache = root / f"cache-{pair}"
            for mode in ("cold", "warm"):
                samples.append(
                    run_once(mode, model=args.model, config=config, served=served, cache=cache)
                )
                print(samples[-1], file=sys.stderr)
        if not args.no_off:
            samples.append(
                run_once(
                    "off", model=args.model, config=config, served=served, cache=root / "cache-off"
                )
            )
        table(samples)


if __name__ == "__main__":
    main()
