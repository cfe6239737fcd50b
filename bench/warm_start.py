"""Warm starts: time to first token of `verity run` with the 14 filesystem tools, cold vs warm.

    PYTHONPATH=. python bench/warm_start.py [--model embedded] [--runs 2] [--max-steps 3]
                                            [--baseline-root OTHER_CHECKOUT]

Runs `verity run` as a user runs it (a subprocess, the reference filesystem MCP server started
by `npx -y @modelcontextprotocol/server-filesystem DIR` from an mcpServers config, `--allow
'filesystem__*'`), first with an empty prefix cache directory (cold), then again with the
same directory (warm), and once more with `--no-prefix-cache` (off: what every run cost
before). Each row is one process; the cold and warm runs alternate over `--runs` pairs, each
pair with its own empty cache directory, so both see the same machine load.

Time to first token (TTFT) is measured three ways, all from the trace the run wrote:
- process: from launching `verity run` to its first generated token, as the end of the first
  model call less its decoding (`created_at - decode_s`): Python start, imports, MCP server
  start, model load, prompt rendering, the prefix cache's restore and the prompt;
- step: from launching to step 1's start plus its prompt evaluation (`prefill_s`): the same
  less what happens inside the first model call before its prompt is evaluated (a model that
  loads on first use loads there; this was the "process" column of earlier tables);
- prompt: the first model call's prompt evaluation alone (`prefill_s`), which is all that the
  prefix cache changes.
Target: warm TTFT <= 10% of cold.

With `--baseline-root`, the same runs are made with another checkout of Verity (e.g. main
before a change) as well, alternating with this one, so that both see the same machine load.
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
    code: str
    """`this` checkout, or `baseline` (`--baseline-root`)."""
    process_ttft_s: float
    step_ttft_s: float
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


def run_once(
    mode: str,
    *,
    model: str,
    config: Path,
    served: Path,
    cache: Path,
    root: Path = ROOT,
    max_steps: int = 3,
) -> Sample:
    """One `verity run` of the checkout at `root` in a process of its own; its timings from
    the trace it wrote."""
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
        str(max_steps),
        "--quiet",
        "--trace-db",
        str(trace),
        "--prefix-cache-dir",
        str(cache),
    ]
    if mode == "off":
        command.append("--no-prefix-cache")
    environment = {**os.environ, "PYTHONPATH": str(root)}
    launched, started = time.time(), time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    finished = subprocess.run(command, env=environment, cwd=root, capture_output=True, timeout=1800)
    wall = time.perf_counter() - started
    if "Traceback" in finished.stderr.decode(errors="replace"):
        sys.exit(f"verity run failed:\n{finished.stderr.decode(errors='replace')}")
    with sqlite3.connect(trace) as db:
        step_start, ended, decode, prefill, prompt, evaluated = db.execute(
            "select s.started_at, m.created_at, m.decode_s, m.prefill_s, m.input_tokens, "
            "m.input_tokens_evaluated "
            "from model_calls m join steps s on s.run_id = m.run_id and s.step = m.step "
            "where m.purpose = 'agent' order by m.rowid limit 1"
        ).fetchone()
    first_token = datetime.fromisoformat(ended).timestamp() - decode
    step_first_token = datetime.fromisoformat(step_start).timestamp() + prefill
    code = "this" if root == ROOT else "baseline"
    return Sample(
        mode,
        code,
        first_token - launched,
        step_first_token - launched,
        prefill,
        prompt,
        evaluated,
        wall,
        finished.returncode,
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
    """Print every run, then the medians per checkout and mode, and the warm/cold ratios."""
    print(
        f"{'code':<8} {'mode':<5} {'TTFT process s':>14} {'TTFT step s':>11} "
        f"{'TTFT prompt s':>13} {'prompt tok':>10} {'evaluated':>9} {'wall s':>7} {'exit':>4}"
    )
    for s in samples:
        print(
            f"{s.code:<8} {s.mode:<5} {s.process_ttft_s:>14.2f} {s.step_ttft_s:>11.2f} "
            f"{s.prefill_s:>13.2f} {s.prompt_tokens:>10} {s.evaluated_tokens:>9} "
            f"{s.wall_s:>7.1f} {s.exit_code:>4}"
        )
    print()
    print(f"{'median':<15} {'TTFT process s':>14} {'TTFT step s':>11} {'TTFT prompt s':>13}")
    for code in ("baseline", "this"):
        medians: dict[str, tuple[float, float, float]] = {}
        for mode in ("cold", "warm", "off"):
            chosen = [s for s in samples if s.mode == mode and s.code == code]
            if chosen:
                medians[mode] = (
                    statistics.median(s.process_ttft_s for s in chosen),
                    statistics.median(s.step_ttft_s for s in chosen),
                    statistics.median(s.prefill_s for s in chosen),
                )
        for mode, (process, step, prompt) in medians.items():
            print(f"{code + ' ' + mode:<15} {process:>14.2f} {step:>11.2f} {prompt:>13.2f}")
        if "cold" in medians and "warm" in medians:
            cold, warm = medians["cold"], medians["warm"]
            print(
                f"{code}: warm / cold, TTFT process: {warm[0] / cold[0]:.1%}   step: "
                f"{warm[1] / cold[1]:.1%}   prompt: {warm[2] / cold[2]:.1%}   (target <= 10%)"
            )


def main() -> None:
    """Measure cold, warm and off runs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded", help="what `verity run --model` gets")
    parser.add_argument("--runs", type=int, default=2, help="cold/warm pairs (2)")
    parser.add_argument("--no-off", action="store_true", help="skip the --no-prefix-cache run")
    parser.add_argument(
        "--max-steps", type=int, default=3, help="each run's --max-steps (1: the first call only)"
    )
    parser.add_argument(
        "--baseline-root",
        type=Path,
        help="another checkout of Verity to run as the baseline, alternating with this one",
    )
    args = parser.parse_args()
    roots = [ROOT] if args.baseline_root is None else [args.baseline_root.resolve(), ROOT]
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
        runs = {"model": args.model, "config": config, "served": served}
        for pair in range(args.runs):
            for number, code in enumerate(roots):
                cache = root / f"cache-{pair}-{number}"
                for mode in ("cold", "warm"):
                    sample = run_once(
                        mode, **runs, cache=cache, root=code, max_steps=args.max_steps
                    )
                    samples.append(sample)
                    print(sample, file=sys.stderr)
        if not args.no_off:
            for number, code in enumerate(roots):
                cache = root / f"cache-off-{number}"
                samples.append(
                    run_once("off", **runs, cache=cache, root=code, max_steps=args.max_steps)
                )
        table(samples)


if __name__ == "__main__":
    main()
