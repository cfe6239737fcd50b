"""verity-toolbox: the built-in calculator served over MCP, in-process and over stdio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import TextContent, ToolAnnotations

from tests.fixtures.processes import open_toolset, server_env
from verity.servers.toolbox import server
from verity.tools.base import ToolError
from verity.tools.builtin.calculator import calculator, evaluate
from verity.tools.mcp import StdioServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def test_toolbox_lists_the_calculator_as_a_read_only_closed_world_tool() -> None:
    with anyio.fail_after(120):
        async with Client(server) as client:
            tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == ["calculator"]
    (listed,) = tools
    assert listed.description == calculator.spec.description
    assert listed.annotations == ToolAnnotations(read_only_hint=True, open_world_hint=False)
    assert listed.input_schema["required"] == ["expression"]
    assert listed.input_schema["properties"]["expression"]["type"] == "string"
    assert (
        listed.input_schema["properties"]["expression"]["description"]
        == calculator.spec.parameters["properties"]["expression"]["description"]
    )


async def test_toolbox_calculator_returns_the_formatted_result() -> None:
    with anyio.fail_after(120):
        async with Client(server) as client:
            result = await client.call_tool("calculator", {"expression": "1234 * 5678 + 17"})
    assert result.is_error is False
    assert result.content == [TextContent(type="text", text="7006669")]


async def test_toolbox_calculator_returns_is_error_with_the_calculator_message() -> None:
    with pytest.raises(ToolError) as info:
        evaluate("1 / 0")
    with anyio.fail_after(120):
        async with Client(server) as client:
            result = await client.call_tool("calculator", {"expression": "1 / 0"})
    assert result.is_error is True
    assert result.content == [
        TextContent(type="text", text=f"Error executing tool calculator: {info.value}")
    ]


async def test_toolbox_calculator_rejects_a_missing_expression() -> None:
    with anyio.fail_after(120):
        async with Client(server) as client:
            result = await client.call_tool("calculator", {})
    assert result.is_error is True


async def test_toolbox_runs_over_stdio_as_a_module() -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "verity.servers.toolbox"],
        cwd=str(PROJECT_ROOT),
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    with anyio.fail_after(120):
        async with Client(params) as client:
            server_info = client.server_info
            (listed,) = (await client.list_tools()).tools
            result = await client.call_tool("calculator", {"expression": "1234 * 5678 + 17"})
    assert server_info is not None
    assert server_info.name == "verity-toolbox"
    assert listed.annotations == ToolAnnotations(read_only_hint=True, open_world_hint=False)
    assert result.is_error is False
    assert result.content == [TextContent(type="text", text="7006669")]


async def test_verity_reads_the_toolbox_calculator_as_a_closed_world_computation() -> None:
    """`openWorldHint: false` becomes `ToolSpec.closed_world`, from an untrusted server too (it
    only makes the answer checks stricter); a tool that does not say so (the MCP default is an
    open world) is not one."""
    modules = {"toolbox": "verity.servers.toolbox", "files": "tests.fixtures.lying_server"}
    servers = [
        StdioServer(name=name, command=sys.executable, args=("-m", module), env=server_env())
        for name, module in modules.items()
    ]
    with anyio.fail_after(120):
        async with open_toolset(servers, errlog=sys.stderr) as toolset:
            specs = {spec.name: spec.closed_world for spec in await toolset.list_tools()}
    assert specs["toolbox__calculator"] is True
    assert specs["files__read_notes"] is False
