"""One oversized or too-deep tool costs only itself: the server's other tools stay offered.

The hostile schema server lists, beside its well-behaved tools, `wide` (an enum of 10,000
values) and `deep` (an object nested 100 levels). Real server in a subprocess over stdio.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, open_toolset, server_env
from verity.tools.mcp import StdioServer
from verity.tools.toolset import call_tool

WIDE = "its definition takes 136.9 KiB, over the limit of 16.0 KiB per tool"
DEEP = "its input schema is nested 201 levels deep, over the limit of 64"
LOOKUP = "its $ref '#/definitions/Key' cannot be resolved"


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def hostile(**options: int) -> StdioServer:
    return StdioServer(
        name="schemas",
        command=sys.executable,
        args=("-m", "tests.fixtures.schema_server", "--hostile"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
        connect_timeout=60,  # a start on a loaded 2-core machine is not what is tested
        **options,  # type: ignore[arg-type]
    )


async def test_a_wide_and_a_deep_tool_are_unavailable_by_name_and_the_rest_of_the_server_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(120), caplog.at_level(logging.WARNING, logger="verity.mcp"):
        async with open_toolset([hostile()], resource_tools=False) as toolset:
            names = [spec.name for spec in await toolset.list_tools()]
            product = await call_tool(toolset, "schemas__multiply", {"a": 6, "b": 7}, time_limit=10)
            (status,) = toolset.status()
    assert names == ["schemas__multiply", "schemas__annotate"]
    assert product.content == "42"
    assert (status.state, status.restarts) == ("connected", 0)
    assert status.unavailable == {"lookup": LOOKUP, "wide": WIDE, "deep": DEEP}
    assert [r.getMessage() for r in caplog.records] == [
        f"MCP server 'schemas': tool 'lookup' is unavailable: {LOOKUP}",
        f"MCP server 'schemas': tool 'wide' is unavailable: {WIDE}",
        f"MCP server 'schemas': tool 'deep' is unavailable: {DEEP}",
    ]


async def test_tools_past_a_servers_list_budget_are_unavailable_and_those_before_it_offered() -> (
    None
):
    with anyio.fail_after(120):
        async with open_toolset([hostile(max_list_bytes=400)], resource_tools=False) as toolset:
            names = [spec.name for spec in await toolset.list_tools()]
            (status,) = toolset.status()
    assert names == ["schemas__multiply"]
    assert status.unavailable["annotate"] == (
        "the server's tools before it already take 0.2 KiB of the 0.4 KiB allowed per server"
    )
