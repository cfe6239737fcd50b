"""`run_agent` reports the run's status and reason: an answer is a success only when answered."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.fixtures.processes import assert_no_leftovers, server_env
from verity import TraceStore
from verity.servers._approvals import ClientApprovals
from verity.servers.verity import ServedAgent, build_server
from verity.testing import ScriptedModel, answer, calls
from verity.tools.builtin.calculator import calculator
from verity.tools.mcp import MCPToolset, StdioServer
from verity.tools.toolset import FunctionToolset, Toolset


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    store = TraceStore(tmp_path / "traces.db")
    yield store
    store.close()
    assert_no_leftovers()


def with_time_server(servers: Sequence[str], approvals: ClientApprovals) -> list[Toolset]:
    missing = StdioServer(
        name="time", command="/nonexistent/mcp-server-time", env=server_env(), connect_timeout=5
    )
    return [FunctionToolset([calculator]), MCPToolset([missing])]


def calculator_only(servers: Sequence[str], approvals: ClientApprovals) -> list[Toolset]:
    return [FunctionToolset([calculator])]


async def test_run_agent_says_tools_unavailable_when_a_server_did_not_start(
    store: TraceStore,
) -> None:
    model = ScriptedModel([answer("720")])
    agent = ServedAgent(model=model, store=store, toolsets=with_time_server, mcp_servers=["time"])
    with anyio.fail_after(30):
        async with Client(build_server(agent)) as client:
            done = await client.call_tool("run_agent", {"task": "What time is it in Tokyo?"})
    outcome = done.structured_content
    assert outcome is not None
    assert (outcome["status"], outcome["answer"]) == ("tools_unavailable", "720")
    assert outcome["reason"].startswith("MCP server 'time' did not start: ")


async def test_run_agent_says_rejected_with_the_reason_for_a_non_answer(store: TraceStore) -> None:
    computed = calls(("calculator", {"expression": "6 * 7"}))
    model = ScriptedModel([computed, answer("None"), answer("None"), answer("None")])
    agent = ServedAgent(model=model, store=store, toolsets=calculator_only)
    with anyio.fail_after(30):
        async with Client(build_server(agent)) as client:
            done = await client.call_tool("run_agent", {"task": "What is 6 * 7?"})
    assert done.structured_content is not None
    assert {k: done.structured_content[k] for k in ("status", "reason", "answer")} == {
        "status": "rejected",
        "reason": "answer-checks: the answer is the bare value None, which answers nothing",
        "answer": "None",
    }
    model.assert_complete()


async def test_run_agent_says_answered_without_a_reason_for_a_grounded_answer(
    store: TraceStore,
) -> None:
    computed = calls(("calculator", {"expression": "6 * 7"}))
    model = ScriptedModel([computed, answer("6 * 7 = 42")])
    agent = ServedAgent(model=model, store=store, toolsets=calculator_only)
    with anyio.fail_after(30):
        async with Client(build_server(agent)) as client:
            done = await client.call_tool("run_agent", {"task": "What is 6 * 7?"})
    assert done.structured_content is not None
    assert (done.structured_content["status"], done.structured_content["reason"]) == (
        "answered",
        None,
    )
