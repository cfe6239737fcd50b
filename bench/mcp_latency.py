"""Tool-call round trip through Verity's MCPToolset vs a raw `mcp.Client`, on the same server.

    PYTHONPATH=. python bench/mcp_latency.py [--calls 300] [--concurrency 16]

Both sides call `echo` of tests/fixtures/faulty_server.py (an MCPServer) over stdio and over
streamable HTTP on 127.0.0.1. Verity's side goes through `verity.tools.toolset.call_tool`, the
path a run takes (name lookup, timeout scope, error boundary, rendering). Prints p50/p99 per
call, the ratio to the raw client (target <= 1.10), wall time for N concurrent calls, and the
time from a server crash mid-call to the error result.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from verity.tools.mcp import HTTPServer, MCPToolset, ServerSpec, StdioServer
from verity.tools.toolset import call_tool

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PYTHONPATH": str(ROOT)}
ARGS = ("-m", "tests.fixtures.faulty_server")

Call = Callable[[], Awaitable[object]]


async def paired(raw: Call, verity: Call, n: int) -> tuple[list[float], list[float]]:
    """Alternate the two sides call by call, so both see the same machine load."""
    for _ in range(20):  # warm-up
        await raw()
        await verity()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        order = ((0, raw), (1, verity)) if i % 2 == 0 else ((1, verity), (0, raw))
        for side, call in order:
            start = time.perf_counter()
            await call()
            times[side].append(time.perf_counter() - start)
    return times


async def concurrent(call: Call, n: int, width: int) -> float:
    start = time.perf_counter()
    limiter = anyio.CapacityLimiter(width)

    async def one() -> None:
        async with limiter:
            await call()

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(one)
    return time.perf_counter() - start


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


async def measure(
    target: str | StdioServerParameters, spec: ServerSpec, n: int, width: int
) -> dict[str, float]:
    async with Client(target) as client, MCPToolset([spec], resource_tools=False) as toolset:
        name = f"{spec.name}__echo"

        async def raw() -> object:
            return await client.call_tool("echo", {"text": "ping"})

        async def verity() -> object:
            result = await call_tool(toolset, name, {"text": "ping"}, time_limit=30)
            assert not result.is_error, result.content
            return result

        raw_times, ver_times = await paired(raw, verity, n)
        raw_conc = ver_conc = 0.0
        for _ in range(3):  # alternate, keep the best of three
            raw_conc = min(raw_conc or 1e9, await concurrent(raw, n, width))
            ver_conc = min(ver_conc or 1e9, await concurrent(verity, n, width))
    return {
        "raw_p50": pct(raw_times, 50),
        "raw_p99": pct(raw_times, 99),
        "ver_p50": pct(ver_times, 50),
        "ver_p99": pct(ver_times, 99),
        "raw_conc": raw_conc,
        "ver_conc": ver_conc,
    }


async def crash_to_error(spec: ServerSpec, rounds: int = 5) -> list[float]:
    out = []
    async with MCPToolset([spec], resource_tools=False) as toolset:
        for _ in range(rounds):
            await call_tool(toolset, f"{spec.name}__echo", {"text": "up"}, time_limit=30)
            start = time.perf_counter()
            result = await call_tool(toolset, f"{spec.name}__crash", {}, time_limit=30)
            out.append(time.perf_counter() - start)
            assert result.is_error
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_http(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, *ARGS, "--http", str(port)],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("HTTP fixture did not start")


async def main(n: int, width: int) -> None:
    stdio = StdioServer(
        name="bench",
        command=sys.executable,
        args=ARGS,
        env=ENV,
        cwd=str(ROOT),
        max_restarts=100,
        restart_backoff=0.0,
        trusted=True,
    )
    params = StdioServerParameters(command=sys.executable, args=list(ARGS), env=ENV, cwd=ROOT)
    rows = {"stdio": await measure(params, stdio, n, width)}
    port = free_port()
    process = start_http(port)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        rows["http"] = await measure(url, HTTPServer(name="bench", url=url, trusted=True), n, width)
    finally:
        process.kill()
        process.wait()
    crashes = await crash_to_error(stdio)

    print(f"## MCP tool-call latency ({n} sequential calls; {n} calls {width} at a time)\n")
    print(
        "| transport | raw p50 ms | verity p50 ms | ratio p50 | raw p99 ms | verity p99 ms "
        f"| ratio p99 | raw {n}x{width} s | verity {n}x{width} s | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        cells = [name]
        for raw, ver in (("raw_p50", "ver_p50"), ("raw_p99", "ver_p99"), ("raw_conc", "ver_conc")):
            cells += [f"{r[raw]:.2f}", f"{r[ver]:.2f}", f"{r[ver] / r[raw]:.2f}"]
        print("| " + " | ".join(cells) + " |")
    print("\nBaseline: the raw `mcp.Client` columns (target ratio <= 1.10).")
    print(
        f"Crash-to-error (stdio, os._exit mid-call, {len(crashes)} rounds): "
        f"median {statistics.median(crashes) * 1000:.1f} ms, max {max(crashes) * 1000:.1f} ms "
        "(target < 1000 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    options = parser.parse_args()
    anyio.run(main, options.calls, options.concurrency)
