"""`verity serve --http` under load, and what serving costs a run, with the embedded model.

    PYTHONPATH=. python bench/serve_load.py [--clients 8] [--calls 50] [--repeats 3]

1. Trace reads: N concurrent MCP clients (2026-07-28 over HTTP) each make M calls alternating
   `get_run` and `list_runs`: errors (target 0), p50/p99 per call, and the server's RSS and
   open file descriptors before and after.
2. A run through the server vs the same run in-process (`verity.run`, what `verity run` does
   once its model is loaded): the same task on the same GGUF, greedy, both models warm, the two
   alternated; median wall time and the ratio (target <= 1.05).
3. Four `run_agent` calls sent at once: all complete (none lost, none refused), each in the
   trace as completed.
4. Cancellation: a call cancelled 10 s into its model call (generating) and 0.5 s into it (the
   new prompt tokens may still be evaluated, which llama.cpp does in one uninterruptible call);
   the time from the cancel to the trace recording the run `cancelled`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from verity import (
    LlamaCppModel,
    ModelSettings,
    TraceRecorder,
    TraceStore,
    embedded_model_path,
    run,
)
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset

ROOT = Path(__file__).resolve().parent.parent
TASK = "What is 1234 * 5678 + 17?"
LONG_TASK = "Write a long story about a lighthouse keeper, at least 500 words."
N_CTX = 4096


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_server(port: int, database: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "verity",
        "serve",
        "--http",
        "--port",
        str(port),
        "--trace-db",
        str(database),
        "--n-ctx",
        str(N_CTX),
        "--max-queue",
        "8",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("verity serve did not start listening")


def footprint(pid: int) -> tuple[float, int]:
    """Resident memory (MiB) and open file descriptors of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def trace_reads(url: str, run_id: str, clients: int, calls: int) -> tuple[list[float], int]:
    """Every client alternates get_run and list_runs; returns per-call seconds and errors."""
    times: list[float] = []
    errors = 0

    async def client_calls() -> None:
        nonlocal errors
        async with Client(url) as client:
            for i in range(calls):
                name, arguments = (
                    ("get_run", {"run_id": run_id}) if i % 2 == 0 else ("list_runs", {"limit": 20})
                )
                start = time.perf_counter()
                try:
                    result = await client.call_tool(name, arguments)
                    errors += int(result.is_error)
                except Exception:  # noqa: BLE001 - a bench counts failures, it does not stop
                    errors += 1
                times.append(time.perf_counter() - start)

    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(client_calls)
    return times, errors


async def served_run(client: Client, task: str = TASK) -> dict[str, Any]:
    result = await client.call_tool("run_agent", {"task": task})
    assert result.structured_content is not None, result.content
    return result.structured_content


async def compare_runs(
    client: Client, repeats: int, database: Path, served_database: Path
) -> tuple[float, float, float, str]:
    """Median wall seconds of the task in-process and through the server, alternated, and the
    median serving overhead: a served call's wall time less its run's own duration (trace)."""
    model = LlamaCppModel(embedded_model_path(), ModelSettings(temperature=0, n_ctx=N_CTX))
    store = TraceStore(database)
    local: list[float] = []
    served: list[float] = []
    overheads: list[float] = []
    answers = set()

    async def in_process() -> None:
        start = time.perf_counter()
        result = await run(
            TASK, model=model, toolsets=[FunctionToolset([calculator])], hooks=TraceRecorder(store)
        )  # traced, as `verity run` does
        local.append(time.perf_counter() - start)
        answers.add(result.answer)

    async def through_server() -> None:
        start = time.perf_counter()
        outcome = await served_run(client)
        served.append(time.perf_counter() - start)
        answers.add(outcome["answer"])
        reader = TraceStore(served_database)
        try:
            record = reader.run(outcome["run_id"])
        finally:
            reader.close()
        assert record is not None
        overheads.append(served[-1] - record["duration_s"])

    try:
        await in_process()  # warm-up: loads the model; the server's is warm already
        local.clear()
        for i in range(repeats):
            for side in (
                (in_process, through_server) if i % 2 == 0 else (through_server, in_process)
            ):
                await side()
    finally:
        model.close()
        store.close()
    same = "same answer" if len(answers) == 1 else f"answers differ: {sorted(answers)}"
    return statistics.median(local), statistics.median(served), statistics.median(overheads), same


async def queued_runs(client: Client, database: Path) -> tuple[int, int, float]:
    """Four calls at once: how many completed, and how many the trace holds as completed."""
    outcomes: list[dict[str, Any]] = []
    start = time.perf_counter()

    async def one() -> None:
        outcomes.append(await served_run(client))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(one)
    wall = time.perf_counter() - start
    store = TraceStore(database)
    try:
        recorded = [store.run(o["run_id"]) for o in outcomes]
    finally:
        store.close()
    completed = sum(o["status"] == "completed" for o in outcomes)
    in_trace = sum(r is not None and r["status"] == "completed" for r in recorded)
    return completed, in_trace, wall


async def cancel_latency(client: Client, database: Path, wait: float) -> float:
    """Seconds from cancelling a run `wait` s into its model call to the trace recording it
    cancelled."""
    working = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        if "model working" in (message or ""):
            working.set()

    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: client.call_tool("run_agent", {"task": LONG_TASK}, progress_callback=progress)
        )
        await working.wait()
        await anyio.sleep(wait)
        cancelled_at = datetime.now(UTC)
        group.cancel_scope.cancel()
    store = TraceStore(database)
    try:
        with anyio.fail_after(300):
            while True:
                (row,) = store.runs(limit=1)
                if row["status"] != "running":
                    break
                await anyio.sleep(0.05)
    finally:
        store.close()
    assert row["status"] == "cancelled", row
    return (datetime.fromisoformat(row["ended_at"]) - cancelled_at).total_seconds()


async def main(args: argparse.Namespace) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="serve-load-"))
    database = scratch / "traces.db"
    port = free_port()
    server = start_server(port, database)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with Client(url, read_timeout_seconds=900) as client:
            warm = await served_run(client)  # loads the server's model
            before = footprint(server.pid)
            times, errors = await trace_reads(url, warm["run_id"], args.clients, args.calls)
            after = footprint(server.pid)
            local, served, overhead, same = await compare_runs(
                client, args.repeats, scratch / "local.db", database
            )
            completed, in_trace, queue_wall = await queued_runs(client, database)
            cancel_early = await cancel_latency(client, database, 0.5)
            cancel_late = await cancel_latency(client, database, 10)
    finally:
        server.terminate()
        server.wait(timeout=30)
    total = args.clients * args.calls
    print(
        f"verity serve --http, embedded model, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print()
    print("| measure | value | target |")
    print("|---|---|---|")
    reads = f"{args.clients} clients x {args.calls} calls"
    print(f"| trace reads: {reads}, errors | {errors} of {total} | 0 |")
    print(
        f"| trace reads: p50 / p99 per call | {percentile(times, 0.5) * 1000:.1f} / "
        f"{percentile(times, 0.99) * 1000:.1f} ms | |"
    )
    print(
        f"| server RSS before -> after | {before[0]:.0f} -> {after[0]:.0f} MiB "
        f"({after[0] - before[0]:+.0f}) | flat |"
    )
    print(
        f"| server open fds before -> after | {before[1]} -> {after[1]} "
        f"({after[1] - before[1]:+d}) | flat |"
    )
    print(
        f"| run in-process (what `verity run` does once loaded), median of {args.repeats} | "
        f"{local:.2f} s | |"
    )
    print(
        f"| run_agent through `verity serve`, median of {args.repeats} | {served:.2f} s "
        f"({same}) | |"
    )
    print(f"| serve / in-process | {served / local:.3f} | <= 1.05 |")
    print(
        f"| serving overhead per call (wall less the run's own traced duration), median | "
        f"{overhead * 1000:.0f} ms | |"
    )
    print(
        f"| 4 run_agent calls at once: completed, in the trace | {completed} of 4, "
        f"{in_trace} of 4 ({queue_wall:.1f} s wall) | 4, 4 |"
    )
    print(
        f"| cancel 10 s into the model call (generating) -> run recorded cancelled | "
        f"{cancel_late:.2f} s | <= 1 |"
    )
    print(
        f"| cancel 0.5 s into the model call (may still evaluate the prompt) -> recorded | "
        f"{cancel_early:.2f} s | <= 1 |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    anyio.run(main, parser.parse_args())
