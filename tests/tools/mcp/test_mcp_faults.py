"""Servers that crash, hang, stay silent or send garbage never end a run, nor outlive it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, eventually, open_toolset, server_env
from verity.tools.base import ToolResult
from verity.tools.mcp import StdioServer
from verity.tools.toolset import call_tool


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def faulty(marks: Path | None = None, **options: object) -> StdioServer:
    extra = {"FAULTY_MARKS": str(marks)} if marks else {}
    return StdioServer(
        name="faulty",
        command=sys.executable,
        args=("-m", "tests.fixtures.faulty_server"),
        env=server_env(**extra),
        cwd=str(PROJECT_ROOT),
        **options,  # type: ignore[arg-type]
    )


def raw_server(*flags: str) -> StdioServer:
    script = str(PROJECT_ROOT / "tests" / "fixtures" / "raw_server.py")
    return StdioServer(
        name="raw",
        command=sys.executable,
        args=(script, *flags),
        env=server_env(),
    )


async def test_a_server_without_resource_templates_keeps_its_tools_and_resources() -> None:
    # mcp-server-sqlite answers resources/templates/list with Method not found: it is optional
    with anyio.fail_after(120):
        async with open_toolset([raw_server("--resources")]) as toolset:
            names = {spec.name for spec in await toolset.list_tools()}
            resources, templates = await toolset.list_resources("raw")
            (status,) = toolset.status()
    assert "raw__ping" in names
    assert [r.uri for r in resources] == ["memo://insights"] and templates == []
    assert status.state == "connected" and status.error is None


async def test_server_that_dies_mid_call_gives_an_error_within_a_second_and_is_restarted() -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty()], resource_tools=False) as toolset:
            started = time.perf_counter()
            crashed = await call_tool(toolset, "faulty__crash", {}, time_limit=10)
            crash_to_error = time.perf_counter() - started
            again = await call_tool(toolset, "faulty__echo", {"text": "back"}, time_limit=10)
            (status,) = toolset.status()
    assert crash_to_error < 1.0
    assert crashed == ToolResult(
        content="Tool 'faulty__crash' failed: MCP server 'faulty' stopped: the connection closed "
        "during tools/call 'crash'. It will be restarted for the next call; try again, or answer "
        "without this tool.",
        is_error=True,
    )
    assert again.content == "back"
    assert (status.state, status.restarts) == ("connected", 1)


async def test_server_that_exits_between_calls_is_noticed_and_restarted_for_the_next_call() -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty()], resource_tools=False) as toolset:
            bye = await call_tool(toolset, "faulty__exit_soon", {}, time_limit=10)
            await eventually(lambda: toolset.status()[0].state == "down")
            again = await call_tool(toolset, "faulty__echo", {"text": "back"}, time_limit=10)
            (status,) = toolset.status()
    assert bye.content == "bye"
    assert again.content == "back"
    assert (status.state, status.restarts) == ("connected", 1)


async def test_a_crash_fails_every_call_in_flight_at_once_and_concurrent_calls_all_return() -> None:
    results: dict[int, ToolResult] = {}

    async def slow_call(index: int) -> None:
        args = {"steps": 100, "delay": 0.1}
        results[index] = await call_tool(toolset, "faulty__slow", args, time_limit=30)

    with anyio.fail_after(120):
        async with open_toolset([faulty()], resource_tools=False) as toolset:
            echoes = [
                await call_tool(toolset, "faulty__echo", {"text": str(i)}, time_limit=5)
                for i in range(3)
            ]
            async with anyio.create_task_group() as group:
                for index in range(5):
                    group.start_soon(slow_call, index)
                await anyio.sleep(0.3)
                started = time.perf_counter()
                crashed = await call_tool(toolset, "faulty__crash", {}, time_limit=10)
            all_failed_in = time.perf_counter() - started
    assert [e.content for e in echoes] == ["0", "1", "2"]
    assert crashed.is_error is True
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert all(r.is_error and "MCP server 'faulty' stopped" in r.content for r in results.values())
    assert all_failed_in < 1.0


async def test_restarts_are_bounded_and_then_calls_fail_at_once() -> None:
    with anyio.fail_after(120):
        async with open_toolset(
            [faulty(max_restarts=1, restart_backoff=0.01)], resource_tools=False
        ) as toolset:
            first = await call_tool(toolset, "faulty__crash", {}, time_limit=10)
            second = await call_tool(toolset, "faulty__crash", {}, time_limit=10)
            started = time.perf_counter()
            third = await call_tool(toolset, "faulty__echo", {"text": "x"}, time_limit=10)
            refused_in = time.perf_counter() - started
            (status,) = toolset.status()
    assert first.is_error and second.is_error and third.is_error
    assert third.content == (
        "Tool 'faulty__echo' failed: MCP server 'faulty' stopped (the connection closed during "
        "tools/call 'crash') and was restarted 1 times already; it stays down for this session. "
        "Answer without its tools."
    )
    assert refused_in < 0.5
    assert (status.state, status.restarts) == ("down", 1)


async def test_hung_call_times_out_sends_a_cancellation_and_the_server_stays_usable(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty(tmp_path, timeout=0.5)], resource_tools=False) as toolset:
            hung = await call_tool(toolset, "faulty__hang", {}, time_limit=10)
            await eventually((tmp_path / "hang-cancelled").exists)
            after = await call_tool(toolset, "faulty__echo", {"text": "still here"}, time_limit=5)
    assert hung == ToolResult(
        content="Tool 'faulty__hang' failed: MCP server 'faulty' did not answer tools/call 'hang' "
        "within 0.5 s; the request was cancelled. Try again or answer without this tool.",
        is_error=True,
    )
    assert after.content == "still here"


async def test_run_time_limit_cancels_the_call_on_the_server_too(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty(tmp_path)], resource_tools=False) as toolset:
            hung = await call_tool(toolset, "faulty__hang", {}, time_limit=0.5)
            await eventually((tmp_path / "hang-cancelled").exists)
    assert hung.is_error is True
    assert hung.content.startswith("Tool 'faulty__hang' timed out after 0.5 s.")


async def test_huge_output_is_capped_and_the_next_call_still_works() -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty(max_output_chars=1000)], resource_tools=False) as toolset:
            huge = await call_tool(toolset, "faulty__huge", {"chars": 5_000_000}, time_limit=10)
            after = await call_tool(toolset, "faulty__echo", {"text": "ok"}, time_limit=5)
    assert huge.content == "x" * 1000 + "\n[... 4999000 more characters cut]"
    assert after.content == "ok"


async def test_slow_tool_with_progress_finishes_within_its_timeout() -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty(timeout=2)], resource_tools=False) as toolset:
            result = await call_tool(
                toolset, "faulty__slow", {"steps": 5, "delay": 0.05}, time_limit=10
            )
    assert result.content == "done 5"


async def test_invalid_result_content_becomes_an_error_result_not_a_crash() -> None:
    raw = raw_server()
    with anyio.fail_after(120):
        async with open_toolset([raw]) as toolset:
            bad = await call_tool(toolset, "raw__bad_content", {}, time_limit=5)
            good = await call_tool(toolset, "raw__ping", {}, time_limit=5)
    assert bad.is_error is True
    assert bad.content.startswith(
        "Tool 'raw__bad_content' failed: MCP server 'raw' sent an invalid result for tools/call "
        "'bad_content' (13 problems, first at content.0: Field required)."
    )
    assert good.content == "pong"


async def test_server_that_ignores_discover_connects_on_the_2025_era_without_the_10s_wait() -> None:
    raw = raw_server()
    started = time.perf_counter()
    with anyio.fail_after(120):
        async with open_toolset([raw]) as toolset:
            connected_in = time.perf_counter() - started
            (status,) = toolset.status()
    assert connected_in < 3.0
    assert (status.state, status.protocol_version) == ("connected", "2025-11-25")


async def test_silent_server_is_skipped_after_the_connect_timeout() -> None:
    silent = StdioServer(
        name="silent",
        command=sys.executable,
        args=("-c", "import time; time.sleep(60)"),
        env=server_env(),
        connect_timeout=1.0,
        kill_grace=0.5,
    )
    started = time.perf_counter()
    with anyio.fail_after(120):
        async with open_toolset([silent]) as toolset:
            waited = time.perf_counter() - started
            specs = await toolset.list_tools()
            (status,) = toolset.status()
    assert waited < 3.0
    assert specs == []
    assert (status.state, status.error) == ("failed", "no handshake within 1 s")


async def test_closing_kills_children_that_outlive_the_server(tmp_path: Path) -> None:
    # A wrapper shell that starts the real server as a child which ignores SIGTERM: the
    # group must still be gone after close (SIGKILL after the grace period).
    script = (
        f"trap '' TERM; {sys.executable} -c 'import signal,time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)' & "
        f"exec {sys.executable} -m tests.fixtures.faulty_server"
    )
    wrapper = StdioServer(
        name="wrapped",
        command="/bin/sh",
        args=("-c", script),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
        kill_grace=0.5,
    )
    with anyio.fail_after(120):
        async with open_toolset([wrapper], resource_tools=False) as toolset:
            result = await call_tool(toolset, "wrapped__echo", {"text": "hi"}, time_limit=5)
    assert result.content == "hi"
    assert_no_leftovers(deadline=0.5)


def raw(*flags: str, **options: object) -> StdioServer:
    script = str(PROJECT_ROOT / "tests" / "fixtures" / "raw_server.py")
    return StdioServer(
        name="raw",
        command=sys.executable,
        args=(script, *flags),
        env=server_env(),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("tool", "why"),
    [
        ("bad_bytes", "it sent a line that is not valid UTF-8 (byte 77 of 84)"),
        (
            "surrogate",
            "it sent a message that is not valid JSON-RPC (Invalid JSON: unexpected "
            "end of hex escape at line 1 column 85)",
        ),
    ],
)
async def test_an_undecodable_line_fails_the_call_at_once_and_the_server_is_restarted(
    tool: str, why: str
) -> None:
    with anyio.fail_after(120):
        async with open_toolset([raw("--banner", timeout=20)]) as toolset:
            started = time.perf_counter()
            broken = await call_tool(toolset, f"raw__{tool}", {}, time_limit=25)
            failed_in = time.perf_counter() - started
            again = await call_tool(toolset, "raw__ping", {}, time_limit=25)
            (status,) = toolset.status()
    assert failed_in < 5.0  # not the 20 s request timeout
    assert broken == ToolResult(
        content=f"Tool 'raw__{tool}' failed: MCP server 'raw' stopped: {why}. It will be "
        "restarted for the next call; try again, or answer without this tool.",
        is_error=True,
    )
    assert again.content == "pong"  # a banner line on stdout is ignored, not fatal
    assert (status.state, status.restarts) == ("connected", 1)


@pytest.mark.parametrize("id_last", [False, True])
async def test_a_result_over_the_message_cap_fails_at_once_and_the_server_stays_up(
    id_last: bool,
) -> None:
    with anyio.fail_after(120):
        async with open_toolset([raw(max_message_bytes=1_000_000)]) as toolset:
            big = await call_tool(
                toolset, "raw__big", {"size": 3_000_000, "id_last": id_last}, time_limit=20
            )
            small = await call_tool(toolset, "raw__big", {"size": 10}, time_limit=20)
            (status,) = toolset.status()
    assert big == ToolResult(
        content="Tool 'raw__big' failed: MCP server 'raw' sent a 3.0 MB result, over the 1 MB "
        "limit per message; it was discarded. Ask for less (a smaller range, a filter), or "
        "answer without this tool.",
        is_error=True,
    )
    assert small.content == "x" * 10
    assert (status.state, status.restarts) == ("connected", 0)


async def test_a_server_that_never_lists_its_tools_is_skipped_within_the_startup_timeout() -> None:
    started = time.perf_counter()
    with anyio.fail_after(120):
        async with open_toolset([raw("--silent-list", connect_timeout=1.5)]) as toolset:
            waited = time.perf_counter() - started
            listed = time.perf_counter()
            specs = await toolset.list_tools()
            second_listing = time.perf_counter() - listed
            (status,) = toolset.status()
    assert waited < 5.0  # not the 60 s request timeout
    assert second_listing < 0.5  # and no wait at each step either
    assert specs == []
    assert (status.state, status.error) == ("failed", "it did not list its tools within 1.5 s")


async def test_closing_kills_a_child_that_left_the_group_and_ignores_end_of_input(
    tmp_path: Path,
) -> None:
    # The server starts a child in a session of its own (a daemon): the process-group kill
    # cannot reach it, and it never reads stdin, so end-of-input means nothing to it.
    script = (
        f"{sys.executable} -c 'import os,time; os.setsid(); time.sleep(60)' & "
        f"exec {sys.executable} -m tests.fixtures.faulty_server"
    )
    wrapper = StdioServer(
        name="wrapped",
        command="/bin/sh",
        args=("-c", script),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
        kill_grace=0.5,
    )
    with anyio.fail_after(120):
        async with open_toolset([wrapper], resource_tools=False) as toolset:
            result = await call_tool(toolset, "wrapped__echo", {"text": "hi"}, time_limit=5)
    assert result.content == "hi"
    assert_no_leftovers(deadline=1.0)
