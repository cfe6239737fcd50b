"""A server's own JSON-RPC error is its answer, whatever its code: -32000 and -32001 included.

The SDK reports a closed connection as -32000 and its own timeout as -32001, but servers may
send both codes themselves (-32000 to -32099 are theirs to define). Such an answer must keep
its code and message and leave the server running: no restart, no "did not answer in 60 s".
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest
from mcp import MCPError

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import (
    assert_no_leftovers,
    free_port,
    open_toolset,
    server_env,
    start_http_fixture,
    stop,
)
from verity.tools.base import ToolResult
from verity.tools.mcp import HTTPServer, ServerSpec, StdioServer
from verity.tools.toolset import call_tool

MESSAGE = "upstream quota exhausted; try again after 60 s"
STARTUP = 60  # seconds: a server's start on a loaded 2-core machine is not what is tested


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture(params=["stdio", "http"])
def faulty(request: pytest.FixtureRequest) -> Iterator[ServerSpec]:
    if request.param == "stdio":
        yield StdioServer(
            name="faulty",
            command=sys.executable,
            args=("-m", "tests.fixtures.faulty_server"),
            env=server_env(),
            cwd=str(PROJECT_ROOT),
            connect_timeout=STARTUP,
        )
        return
    port = free_port()
    process: subprocess.Popen[bytes] = start_http_fixture(port)
    yield HTTPServer(name="faulty", url=f"http://127.0.0.1:{port}/mcp", connect_timeout=STARTUP)
    stop(process)


@pytest.mark.parametrize("code", [-32000, -32001])
async def test_a_server_error_with_a_reserved_code_reaches_the_model_and_the_server_stays_up(
    faulty: ServerSpec, code: int
) -> None:
    arguments = {"code": code, "message": MESSAGE}
    with anyio.fail_after(120):
        async with open_toolset([faulty], resource_tools=False) as toolset:
            answers = [
                await call_tool(toolset, "faulty__refuse", arguments, time_limit=10)
                for _ in range(5)  # more than the 3 restarts a dead server gets
            ]
            with pytest.raises(MCPError) as raised:
                await toolset.call_tool("faulty__refuse", arguments)
            after = await call_tool(toolset, "faulty__echo", {"text": "still here"}, time_limit=10)
            (status,) = toolset.status()
    refused = ToolResult(content=f"Tool 'faulty__refuse' raised MCPError: {MESSAGE}", is_error=True)
    assert answers == [refused] * 5
    assert (raised.value.code, raised.value.message) == (code, MESSAGE)
    assert after.content == "still here"
    assert (status.state, status.restarts, status.error) == ("connected", 0, None)
