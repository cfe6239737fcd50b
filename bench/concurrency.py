"""Concurrent served runs: the same tasks through `verity serve --max-concurrent N`, N = 1..8.

    PYTHONPATH=. python bench/concurrency.py [--tasks 32] [--levels 1,2,4,8] [--repeats 3]
        [--base-url URL --api-model NAME]

The backend is one OpenAI-compatible server for every level: by default llama-cpp-python's
server on the embedded model, started here (it runs one request at a time, so expect a speed-up
near 1x); `--base-url` names another (llama-server with parallel slots, vLLM, SGLang), where
the speed-up is what the server's batching allows. Each N has its own `verity serve --http
--max-concurrent N`, warmed by one untimed call; the levels take turns over `--repeats` rounds
(the order reversed every other round), each round sending every task at once from max(levels)
MCP clients (each its own HTTP session). Per level it prints the median wall time from the
first call to the last answer, the speed-up against the first level measured in the same run,
and Verity's own time per run: the run's duration in the trace minus its model calls' durations
(the backend's time, queueing at the backend included), which shows whether Verity adds
serialisation or overhead of its own as N grows (target: N = 8 within 5% of N = 1).
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 180.0


@dataclass
class Level:
    """What one N measured."""

    concurrent: int
    wall_s: float
    answered: int
    model_calls: float
    """Model calls per run (median)."""
    overhead_ms: float
    """Verity's own time per run (median): run duration minus its model calls'."""
    call_s: float
    """A model call's duration as Verity saw it (median), queueing at the backend included."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode} before it listened")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    sys.exit(f"{what} did not listen within {START_TIMEOUT:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def llama_server(model: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1; its /v1 URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for(f"{url}/models", process, "llama_cpp.server")
        yield url
    finally:
        stop(process)


@contextmanager
def verity_serve(
    base_url: str, api_model: str, concurrent: int, clients: int, home: Path
) -> Iterator[str]:
    """`verity serve --http --max-concurrent N` on the backend; its MCP URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "verity",
        "serve",
        "--http",
        "--port",
        str(port),
        "--trace-db",
        str(home / "traces.db"),
        "--base-url",
        base_url,
        "--api-model",
        api_model,
        "--temperature",
        "0",
        "--max-tokens",
        "24",
        "--max-steps",
        "2",
        "--max-concurrent",
        str(concurrent),
        "--max-queue",
        str(clients),
    ]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VERITY_")},
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
    }
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        wait_for(url, process, "verity serve")
        yield url
    finally:
        stop(process)


async def call_all(url: str, tasks: list[str], clients: int) -> tuple[float, list[str], int]:
    """Send every task from `clients` MCP clients at once: the wall time, the run ids, and how
    many were answered."""
    send, receive = anyio.create_memory_object_stream[str](len(tasks))
    for task in tasks:
        send.send_nowait(task)
    send.close()
    run_ids: list[str] = []
    answered = 0

    async def client() -> None:
        nonlocal answered
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=3600)) as http:
            async with Client(streamable_http_client(url, http_client=http)) as mcp:
                async for task in receive:
                    result = await mcp.call_tool("run_agent", {"task": task})
                    outcome = result.structured_content
                    if result.is_error or outcome is None:
                        sys.exit(f"run_agent failed: {result.content}")
                    run_ids.append(outcome["run_id"])
                    answered += outcome["status"] == "answered"

    start = time.perf_counter()
    with receive:
        async with anyio.create_task_group() as group:
            for _ in range(clients):
                group.start_soon(client)
    return time.perf_counter() - start, run_ids, answered


def own_time(database: Path, run_ids: list[str]) -> tuple[float, float, float]:
    """Median model calls per run, median seconds of each run not spent in model calls, and
    the median model call's seconds."""
    with sqlite3.connect(database) as conn:
        rows = [
            conn.execute(
                "select r.duration_s, count(m.id), coalesce(sum(m.duration_s), 0) "
                "from runs r left join model_calls m on m.run_id = r.id where r.id = ?",
                [run_id],
            ).fetchone()
            for run_id in run_ids
        ]
        marks = ", ".join("?" for _ in run_ids)
        durations = conn.execute(
            f"select duration_s from model_calls where run_id in ({marks})", run_ids
        ).fetchall()
    calls = statistics.median(row[1] for row in rows)
    own = statistics.median(row[0] - row[2] for row in rows)
    return calls, own, statistics.median(d for (d,) in durations)


def measure(
    base_url: str, api_model: str, levels: list[int], tasks: list[str], repeats: int
) -> list[Level]:
    """Every level's wall time over `repeats` rounds (levels in turn, the order reversed every
    other round so that a drift in the machine's load favours none), and its runs' own time."""
    clients = max(levels)
    walls: dict[int, list[float]] = {n: [] for n in levels}
    runs: dict[int, list[str]] = {n: [] for n in levels}
    answered = dict.fromkeys(levels, 0)
    with ExitStack() as stack:
        homes = {n: Path(stack.enter_context(tempfile.TemporaryDirectory())) for n in levels}
        urls = {
            n: stack.enter_context(verity_serve(base_url, api_model, n, clients, homes[n]))
            for n in levels
        }
        for n in levels:  # untimed: the first call of a server warms its code paths
            anyio.run(call_all, urls[n], [f"Say hello to the first guest of {n}."], 1)
        for round_ in range(repeats):
            for n in levels if round_ % 2 == 0 else levels[::-1]:
                wall, run_ids, ok = anyio.run(call_all, urls[n], tasks, clients)
                walls[n].append(wall)
                runs[n] += run_ids
                answered[n] += ok
        own = {n: own_time(homes[n] / "traces.db", runs[n]) for n in levels}
    return [
        Level(n, statistics.median(walls[n]), answered[n], own[n][0], own[n][1] * 1000, own[n][2])
        for n in levels
    ]


def print_table(levels: list[Level], tasks: int, repeats: int, backend: str) -> None:
    base = levels[0]
    print(f"{tasks} tasks through verity serve at each N, {repeats} rounds; backend: {backend}")
    print(
        f"{'N':>3}  {'wall s':>8}  {'speed-up':>8}  {'answered':>8}  {'calls/run':>9}  "
        f"{'s/call':>6}  {'Verity ms/run':>13}  {'vs N=' + str(base.concurrent):>8}"
    )
    for level in levels:
        print(
            f"{level.concurrent:>3}  {level.wall_s:>8.1f}  {base.wall_s / level.wall_s:>7.2f}x  "
            f"{level.answered:>4}/{tasks * repeats:<3}  {level.model_calls:>9.1f}  "
            f"{level.call_s:>6.2f}  "
            f"{level.overhead_ms:>13.1f}  {level.overhead_ms / base.overhead_ms:>8.2f}"
        )
    print(
        "wall s: median over the rounds; s/call: a model call as Verity waited for it "
        "(median; queueing at the backend included); Verity ms/run: a run's duration in the "
        "trace minus its model calls' (median over all its runs); speed-up and 'vs' against "
        "the first level, measured in this run."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32, help="tasks per level (32)")
    parser.add_argument("--levels", default="1,2,4,8", help="values of N, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the levels (3)")
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: start one)")
    parser.add_argument("--api-model", default="embedded", help="its model name")
    parser.add_argument("--model", type=Path, help="GGUF for the started server (embedded)")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    if min(args.tasks, args.repeats, *levels) < 1:
        parser.error("--tasks, --repeats and every level must be at least 1")
    tasks = [f"Say hello to guest number {i} in one short sentence." for i in range(args.tasks)]

    def run_levels(base_url: str) -> list[Level]:
        return measure(base_url, args.api_model, levels, tasks, args.repeats)

    if args.base_url:
        results, backend = run_levels(args.base_url), args.base_url
    else:
        from verity import embedded_model_path

        model = args.model or embedded_model_path()
        with llama_server(model) as url:
            results = run_levels(url)
        backend = f"llama_cpp.server on {model.name} (one request at a time)"
    print_table(results, args.tasks, args.repeats, backend)


if __name__ == "__main__":
    main()
