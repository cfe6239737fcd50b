"""Reading large MCP results over stdio: the SDK's own reader vs Verity's, on the same server.

    PYTHONPATH=. python bench/mcp_large_results.py [--sizes 5,10,20,40] [--repeat 2]

Both sides call `big` of tests/fixtures/raw_server.py, whose result is one JSON-RPC line of the
given size. The baseline is `mcp.Client` over the SDK's `stdio_client` (mcp 2.x), whose reader
re-joins and re-splits the pending line for every 64 KiB chunk it receives, so its cost grows
with the square of the line's length; Verity's transport (`verity.tools.mcp._stdio`) appends
to one buffer and scans each chunk once. Prints the best wall time of each, and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from verity.tools.approval import ApprovalGate
from verity.tools.mcp import MCPToolset, StdioServer
from verity.tools.toolset import call_tool

ROOT = Path(__file__).resolve().parent.parent
SERVER = str(ROOT / "tests" / "fixtures" / "raw_server.py")


async def sdk_seconds(size: int) -> float:
    params = StdioServerParameters(command=sys.executable, args=[SERVER])
    async with Client(params, mode="legacy", read_timeout_seconds=600) as client:
        started = time.perf_counter()
        result = await client.call_tool("big", {"size": size})
        elapsed = time.perf_counter() - started
    assert not result.is_error
    return elapsed


async def verity_seconds(size: int) -> float:
    spec = StdioServer(
        name="raw",
        command=sys.executable,
        args=(SERVER,),
        timeout=600,
        max_message_bytes=size + 2**20,
    )
    async with MCPToolset([spec], approval=ApprovalGate(allow=["*"])) as toolset:
        started = time.perf_counter()
        result = await call_tool(toolset, "raw__big", {"size": size}, time_limit=600)
        elapsed = time.perf_counter() - started
    assert not result.is_error, result.content
    return elapsed


async def main(sizes: list[int], repeat: int) -> None:
    print(f"{'result':>8}  {'SDK reader':>11}  {'Verity':>8}  {'ratio':>6}")
    for megabytes in sizes:
        size = megabytes * 1_000_000
        sdk = min([await sdk_seconds(size) for _ in range(repeat)])
        ours = min([await verity_seconds(size) for _ in range(repeat)])
        print(f"{megabytes:>5} MB  {sdk:>9.2f} s  {ours:>6.2f} s  {sdk / ours:>5.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,20,40", help="result sizes in MB")
    parser.add_argument("--repeat", type=int, default=2, help="calls per size; the best counts")
    options = parser.parse_args()
    anyio.run(main, [int(s) for s in options.sizes.split(",")], options.repeat)
