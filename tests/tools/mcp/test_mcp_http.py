"""MCPToolset over streamable HTTP on 127.0.0.1: both eras, and transport failures stay per call."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.fixtures.processes import (
    LOOPBACK_JS,
    assert_no_leftovers,
    ensure_everything,
    eventually,
    free_port,
    open_toolset,
    server_env,
    start_http_fixture,
    stop,
    wait_for_port,
)
from verity.tools.base import ToolResult
from verity.tools.mcp import HTTPServer
from verity.tools.toolset import call_tool


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def fixture_server(port: int, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start_http_fixture(port, marks=tmp_path)
    yield process
    stop(process)


def listening_addresses(port: int) -> list[str]:
    """The local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


async def test_fixture_server_over_http_uses_the_2026_era_and_answers_calls(
    fixture_server: subprocess.Popen[bytes], port: int
) -> None:
    server = HTTPServer(name="web", url=f"http://127.0.0.1:{port}/mcp", headers={"X-Test": "1"})
    with anyio.fail_after(120):
        async with open_toolset([server], resource_tools=False) as toolset:
            result = await call_tool(toolset, "web__echo", {"text": "hi"}, time_limit=5)
            (status,) = toolset.status()
    assert result == ToolResult(content="hi", structured={"result": "hi"})
    assert (status.transport, status.protocol_version) == ("http", "2026-07-28")


async def test_http_server_dying_mid_call_is_an_error_result_and_reconnects_when_back(
    fixture_server: subprocess.Popen[bytes], port: int
) -> None:
    server = HTTPServer(name="web", url=f"http://127.0.0.1:{port}/mcp", restart_backoff=0.01)
    with anyio.fail_after(120):
        async with open_toolset([server], resource_tools=False) as toolset:
            started = time.perf_counter()
            crashed = await call_tool(toolset, "web__crash", {}, time_limit=10)
            crash_to_error = time.perf_counter() - started
            fixture_server.wait(timeout=5)
            revived = start_http_fixture(port)
            try:
                again = await call_tool(toolset, "web__echo", {"text": "back"}, time_limit=10)
            finally:
                stop(revived)
    assert crashed.is_error is True
    assert crashed.content.startswith("Tool 'web__crash' failed: MCP server 'web' stopped: ")
    assert crash_to_error < 1.0
    assert again.content == "back"


async def test_hung_http_call_times_out_cancels_on_the_server_and_the_session_stays_usable(
    fixture_server: subprocess.Popen[bytes], port: int, tmp_path: Path
) -> None:
    server = HTTPServer(name="web", url=f"http://127.0.0.1:{port}/mcp", timeout=0.5)
    with anyio.fail_after(120):
        async with open_toolset([server], resource_tools=False) as toolset:
            hung = await call_tool(toolset, "web__hang", {}, time_limit=10)
            await eventually((tmp_path / "hang-cancelled").exists)
            after = await call_tool(toolset, "web__echo", {"text": "still here"}, time_limit=5)
    assert hung == ToolResult(
        content="Tool 'web__hang' failed: MCP server 'web' did not answer tools/call 'hang' "
        "within 0.5 s; the request was cancelled. Try again or answer without this tool.",
        is_error=True,
    )
    assert after.content == "still here"


async def test_unreachable_url_is_reported_and_skipped(port: int) -> None:
    server = HTTPServer(name="gone", url=f"http://127.0.0.1:{port}/mcp", connect_timeout=3)
    with anyio.fail_after(120):
        async with open_toolset([server]) as toolset:
            specs = await toolset.list_tools()
            (status,) = toolset.status()
    assert specs == []
    assert status.state == "failed"
    assert status.error is not None and status.error.startswith("ConnectError: ")


@pytest.fixture
def everything_http(port: int) -> Iterator[subprocess.Popen[bytes]]:
    everything = ensure_everything()
    if everything is None:
        pytest.skip("npm is not installed: cannot install @modelcontextprotocol/server-everything")
    process = subprocess.Popen(
        ["node", "--require", str(LOOPBACK_JS), str(everything), "streamableHttp"],
        env={**os.environ, **server_env(PORT=str(port))},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port, process)
    yield process
    stop(process)


async def test_npm_reference_server_over_streamable_http_on_loopback(
    everything_http: subprocess.Popen[bytes], port: int
) -> None:
    server = HTTPServer(name="everything", url=f"http://127.0.0.1:{port}/mcp")
    with anyio.fail_after(120):
        async with open_toolset([server]) as toolset:
            result = await call_tool(
                toolset, "everything__get-sum", {"a": 2, "b": 3}, time_limit=10
            )
            (status,) = toolset.status()
    assert listening_addresses(port) == ["0100007F"]
    assert result.content == "The sum of 2 and 3 is 5."
    assert (status.transport, status.protocol_version) == ("http", "2025-11-25")


async def test_killing_a_2025_era_http_server_mid_call_gives_error_results_not_an_exception_group(
    everything_http: subprocess.Popen[bytes], port: int
) -> None:
    server = HTTPServer(
        name="everything",
        url=f"http://127.0.0.1:{port}/mcp",
        restart_backoff=0.01,
        connect_timeout=2,
    )
    results: list[ToolResult] = []

    async def long_call() -> None:
        args = {"duration": 10, "steps": 10}
        tool = "everything__trigger-long-running-operation"
        results.append(await call_tool(toolset, tool, args, time_limit=20))

    with anyio.fail_after(120):
        async with open_toolset([server], resource_tools=False) as toolset:
            async with anyio.create_task_group() as group:
                group.start_soon(long_call)
                await anyio.sleep(0.5)
                killed_at = time.perf_counter()
                stop(everything_http)
            error_after = time.perf_counter() - killed_at
            later = await call_tool(toolset, "everything__echo", {"message": "x"}, time_limit=10)
    (during,) = results
    assert during.is_error is True and "MCP server 'everything'" in during.content
    # ~2 s: the SDK first tries to resume the SSE stream (the server offers resumability)
    assert error_after < 5.0
    assert later.is_error is True
