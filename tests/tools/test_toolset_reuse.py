"""One MCPToolset held open across runs: one server process, counted entries, clear misuse."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, server_env
from verity import ToolStep, UserError, iter_run, run
from verity.testing import ScriptedModel, answer, calls
from verity.tools.approval import ApprovalGate
from verity.tools.mcp import MCPToolset, StdioServer


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def library() -> MCPToolset:
    server = StdioServer(
        name="library",
        command=sys.executable,
        args=("-m", "tests.fixtures.research_server"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
    )
    return MCPToolset([server], approval=ApprovalGate(allow=["library__*"]))


async def test_a_toolset_held_open_serves_three_runs_from_one_server_process() -> None:
    toolset = library()
    pids = []
    with anyio.fail_after(60):
        async with toolset:
            for _ in range(3):
                model = ScriptedModel([calls(("library__pid", {})), answer("done")])
                result = await run("which process?", model=model, toolsets=[toolset])
                tool_step = result.steps[1]
                assert isinstance(tool_step, ToolStep)
                assert not tool_step.results[0].is_error, tool_step.results[0].content
                pids.append(tool_step.results[0].content)
                model.assert_complete()
            (status,) = toolset.status()
            assert status.state == "connected"
    assert len(set(pids)) == 1


async def test_a_toolset_entered_twice_closes_at_the_last_exit() -> None:
    toolset = library()
    with anyio.fail_after(60):
        async with toolset:
            async with toolset:
                pass
            assert [spec.name for spec in await toolset.list_tools()] == [
                "library__research",
                "library__pid",
            ]
    assert_no_leftovers()
    with pytest.raises(RuntimeError, match="is not open"):
        await toolset.list_tools()


async def test_iter_run_with_a_toolset_never_entered_is_a_clear_error() -> None:
    model = ScriptedModel([])
    with pytest.raises(UserError) as caught:
        async for _ in iter_run("x", model=model, toolsets=[library()]):
            pass
    assert str(caught.value) == (
        "The MCP toolset for 'library' is not open: enter it with `async with toolset:` "
        "(or pass it to run(), which enters it) before using its tools."
    )
    model.assert_complete()
