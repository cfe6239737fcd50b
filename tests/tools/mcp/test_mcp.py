"""MCPToolset against real servers over stdio: names, schemas, results, lists, both eras."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import (
    assert_no_leftovers,
    ensure_everything,
    eventually,
    open_toolset,
    server_env,
)
from verity import LlamaCppModel, RunSettings, ToolStep, run
from verity.models.formats import HermesFormat
from verity.models.grammar import schema_grammar, validate_lark
from verity.tools.base import ToolResult
from verity.tools.mcp import DEFAULT_STARTUP_TIMEOUT, ServerStatus, StdioServer, model_tool_name
from verity.tools.toolset import call_tool

TIME_SERVER = Path(sys.executable).with_name("mcp-server-time")


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture(scope="module")
def everything_js() -> Path:
    path = ensure_everything()
    if path is None:
        pytest.skip("npm is not installed: cannot install @modelcontextprotocol/server-everything")
    return path


def time_server(**options: object) -> StdioServer:
    return StdioServer(
        name="time",
        command=str(TIME_SERVER),
        args=("--local-timezone", "UTC"),
        env=server_env(),
        **options,  # type: ignore[arg-type]
    )


def faulty(name: str = "faulty", **options: object) -> StdioServer:
    return StdioServer(
        name=name,
        command=sys.executable,
        args=("-m", "tests.fixtures.faulty_server"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
        **options,  # type: ignore[arg-type]
    )


async def test_time_server_tools_are_offered_prefixed_with_their_schemas_and_read_only() -> None:
    with anyio.fail_after(120):
        async with open_toolset([time_server()]) as toolset:
            specs = {spec.name: spec for spec in await toolset.list_tools()}
            (status,) = toolset.status()
    assert sorted(specs) == ["time__convert_time", "time__get_current_time"]
    current = specs["time__get_current_time"]
    assert current.read_only is True
    assert current.parameters["required"] == ["timezone"]
    assert current.parameters["properties"]["timezone"]["type"] == "string"
    assert status == ServerStatus(
        name="time",
        transport="stdio",
        state="connected",
        protocol_version="2026-07-28",
        tools=["get_current_time", "convert_time"],
        restarts=0,
        error=None,
    )


async def test_time_server_answers_a_call_with_text_and_structured_output() -> None:
    with anyio.fail_after(120):
        async with open_toolset([time_server()]) as toolset:
            result = await call_tool(
                toolset,
                "time__convert_time",
                {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
                time_limit=10,
            )
    assert result.is_error is False
    assert result.structured["target"]["datetime"].endswith("T21:00:00+09:00")
    assert '"timezone": "Asia/Tokyo"' in result.content


async def test_npm_reference_server_connects_on_the_2025_era_and_renders_every_content_kind(
    everything_js: Path,
) -> None:
    server = StdioServer(
        name="everything", command="node", args=(str(everything_js),), env=server_env()
    )
    with anyio.fail_after(120):
        async with open_toolset([server]) as toolset:
            names = {spec.name for spec in await toolset.list_tools()}
            image = await call_tool(toolset, "everything__get-tiny-image", {}, time_limit=10)
            links = await call_tool(
                toolset, "everything__get-resource-links", {"count": 2}, time_limit=10
            )
            embedded = await call_tool(
                toolset, "everything__get-resource-reference", {"resourceId": 2}, time_limit=10
            )
            (status,) = toolset.status()
    assert status.protocol_version == "2025-11-25"
    assert {"everything__echo", "everything__get-sum", "everything__read_resource"} <= names
    assert image.content.startswith("Here's the image you requested:\n[image: image/png, ")
    assert "bytes, not shown to the model]" in image.content
    assert links.content.count("[resource link: ") == 2
    assert "\n[resource <demo://resource/dynamic/text/2> (text/plain)]\nResource 2: " in (
        embedded.content
    )


async def test_resources_and_prompts_are_readable_and_offered_as_read_only_tools() -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty()]) as toolset:
            specs = {spec.name: spec for spec in await toolset.list_tools()}
            resources, templates = await toolset.list_resources("faulty")
            read = await call_tool(
                toolset, "faulty__read_resource", {"uri": "notes://readme"}, time_limit=10
            )
            templated = await toolset.read_resource("faulty", "notes://groceries")
            prompt = await call_tool(
                toolset,
                "faulty__get_prompt",
                {"name": "review", "arguments": {"code": "x = 1"}},
                time_limit=10,
            )
    assert specs["faulty__read_resource"].read_only is True
    assert "notes://readme: What this server is" in specs["faulty__read_resource"].description
    assert specs["faulty__get_prompt"].parameters["properties"]["name"]["enum"] == ["review"]
    assert [str(r.uri) for r in resources] == ["notes://readme"]
    assert [t.uri_template for t in templates] == ["notes://{name}"]
    assert read == ToolResult(
        content="[resource <notes://readme> (text/plain)]\nThe faulty server breaks on purpose."
    )
    assert templated.endswith("\nnote groceries")
    assert prompt == ToolResult(content="[user]\nPlease review:\nx = 1")


async def test_allow_and_deny_lists_limit_the_offered_tools() -> None:
    servers = [
        faulty("a", include_tools=frozenset({"echo", "huge"}), exclude_tools=frozenset({"huge"})),
    ]
    with anyio.fail_after(120):
        async with open_toolset(servers, resource_tools=False) as toolset:
            names = [spec.name for spec in await toolset.list_tools()]
            hidden = await call_tool(toolset, "a__huge", {"chars": 3}, time_limit=5)
    assert names == ["a__echo"]
    assert hidden.is_error is True
    assert hidden.content.startswith("Unknown tool 'a__huge'. Available tools: a__echo")


async def test_tool_list_refreshes_after_the_server_announces_a_change() -> None:
    with anyio.fail_after(120):
        async with open_toolset([faulty()], resource_tools=False) as toolset:
            before = {spec.name for spec in await toolset.list_tools()}
            grown = await call_tool(toolset, "faulty__grow", {}, time_limit=5)

            async def has_added() -> bool:
                return "faulty__added" in {spec.name for spec in await toolset.list_tools()}

            await eventually(has_added)
            added = await call_tool(toolset, "faulty__added", {"n": 41}, time_limit=5)
    assert "faulty__added" not in before
    assert grown.content == "grown"
    assert added.content == "42"


async def test_a_broken_server_is_reported_and_skipped_while_the_others_work() -> None:
    missing = StdioServer(name="missing", command="/nonexistent/mcp-server")
    with anyio.fail_after(120):
        async with open_toolset([missing, time_server()]) as toolset:
            names = {spec.name for spec in await toolset.list_tools()}
            statuses = toolset.status()
    assert names == {"time__get_current_time", "time__convert_time"}
    assert statuses[0] == ServerStatus(
        name="missing",
        transport="stdio",
        state="failed",
        protocol_version=None,
        tools=[],
        restarts=0,
        error="command not found: /nonexistent/mcp-server",
    )


def test_tool_names_are_valid_and_distinct_even_when_servers_use_odd_names() -> None:
    dotted = model_tool_name("s", "files.read")
    underscored = model_tool_name("s", "files_read", taken=[dotted])
    long = model_tool_name("s", "x" * 100)
    assert dotted.startswith("s__files_read_") and len(dotted) == len("s__files_read_") + 6
    assert underscored == "s__files_read"
    assert len(long) == 64
    assert all(c.isalnum() or c in "_-" for c in dotted + long)


@pytest.mark.slow
async def test_embedded_model_answers_a_time_question_with_the_time_server(
    greedy_model: LlamaCppModel,
) -> None:
    task = "What time is it in Tokyo when it is 12:00 in UTC? Use the convert_time tool."
    with anyio.fail_after(300):
        result = await run(
            task,
            model=greedy_model,
            toolsets=[open_toolset([time_server()], resource_tools=False)],
            settings=RunSettings(max_steps=3),
        )
    tool_steps = [step for step in result.steps if isinstance(step, ToolStep)]
    calls = [call for step in tool_steps for call in step.calls]
    results = [r for step in tool_steps for r in step.results]
    assert [call.name for call in calls] == ["time__convert_time"]
    assert results[0].is_error is False, results[0].content
    assert "21:00" in result.answer


async def test_every_reference_server_schema_converts_into_the_models_call_grammar(
    everything_js: Path,
) -> None:
    servers = [
        StdioServer(
            name="everything", command="node", args=(str(everything_js),), env=server_env()
        ),
        time_server(),
        faulty(),
    ]
    with anyio.fail_after(120):
        async with open_toolset(servers) as toolset:
            specs = await toolset.list_tools()
    grammar = HermesFormat().grammar(specs)
    assert len(specs) > 25
    assert all(spec.name in grammar for spec in specs)
    assert validate_lark(None, grammar) is None
    # every reference server's schema is one the engine takes exactly
    assert [s.name for s in specs if schema_grammar(s.parameters).level != "exact"] == []


def test_a_python_server_started_by_its_path_gets_the_start_up_budget_npx_gets() -> None:
    python = StdioServer(name="py", command=sys.executable, args=("server.py",))
    npx = StdioServer(name="npx", command="npx", args=("-y", "some-server"))
    assert python.startup_timeout == npx.startup_timeout == DEFAULT_STARTUP_TIMEOUT == 120.0
    assert StdioServer(name="py", command="python", connect_timeout=5).startup_timeout == 5


def counted_start(tmp_path: Path, name: str, command: str) -> tuple[StdioServer, Path]:
    """A server started through a shell that notes each start in a file, then runs `command`."""
    starts = tmp_path / f"{name}-starts"
    script = f"echo started >> {starts}; {command}"
    return StdioServer(name=name, command="/bin/sh", args=("-c", script), env=server_env()), starts


async def call_once(
    server: StdioServer, tool: str, arguments: dict[str, Any]
) -> tuple[ToolResult, ServerStatus]:
    """Start `server`, call its `tool` once, and return the result and the server's status."""
    with anyio.fail_after(120):
        async with open_toolset([server]) as toolset:
            result = await call_tool(toolset, f"{server.name}__{tool}", arguments, time_limit=30)
            (status,) = toolset.status()
    assert not result.is_error, result.content
    return result, status


async def test_a_server_slow_to_start_is_never_killed_half_way_and_keeps_the_2026_era(
    tmp_path: Path,
) -> None:
    # npx and uvx download the package before the server reads its first line: killing the
    # process then (as a short discover probe did) left npm's cache broken for every later run
    slow, starts = counted_start(tmp_path, "slow", f"sleep 6; exec {TIME_SERVER}")
    _, status = await call_once(slow, "get_current_time", {"timezone": "UTC"})
    assert (status.state, status.protocol_version, status.restarts) == (
        "connected",
        "2026-07-28",
        0,
    )
    assert starts.read_text() == "started\n"


async def test_a_server_that_never_answers_discover_gets_the_2025_handshake_in_the_same_process(
    tmp_path: Path,
) -> None:
    script = PROJECT_ROOT / "tests" / "fixtures" / "raw_server.py"
    command = f"exec {sys.executable} {script} --ignore-discover"
    mute, starts = counted_start(tmp_path, "mute", command)
    _, status = await call_once(mute, "ping", {})
    assert (status.state, status.protocol_version, status.restarts) == (
        "connected",
        "2025-11-25",
        0,
    )
    assert starts.read_text() == "started\n"
