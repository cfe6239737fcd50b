"""`run_agent` reports the run's status and reason: an answer is a success only when answered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.fixtures.processes import assert_no_leftovers, server_env
from verity import Agent, MCPConfig
from verity.servers.verity import ServedAgent, build_server
from verity.testing import ScriptedModel, answer, calls
from verity.tools.mcp import StdioServer

Serve = Callable[..., ServedAgent]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Serve]:
    """Serves a scripted model with the calculator (and `mcp`'s servers); closed afterwards."""
    agents: list[Agent] = []

    def serve(model: ScriptedModel, mcp: MCPConfig | None = None) -> ServedAgent:
        agents.append(Agent(model=model, mcp=mcp, trace_db=tmp_path / "traces.db"))
        return ServedAgent(agents[-1])

    yield serve
    for agent in agents:
        agent.close()
    assert_no_leftovers()


def with_time_server() -> MCPConfig:
    missing = StdioServer(
        name="time", command="/nonexistent/mcp-server-time", env=server_env(), connect_timeout=5
    )
    return MCPConfig(servers=[missing])


async def test_run_agent_says_tools_unavailable_when_a_server_did_not_start(
    served: Serve,
) -> None:
    model = ScriptedModel([answer("720")])
    agent = served(model, with_time_server())
    with anyio.fail_after(120):
        async with Client(build_server(agent)) as client:
            done = await client.call_tool("run_agent", {"task": "What time is it in Tokyo?"})
    outcome = done.structured_content
    assert outcome is not None
    assert (outcome["status"], outcome["answer"]) == ("tools_unavailable", "720")
    assert outcome["reason"].startswith("MCP server 'time' did not start: ")


async def test_run_agent_says_rejected_with_the_reason_for_a_non_answer(served: Serve) -> None:
    computed = calls(("calculator", {"expression": "6 * 7"}))
    model = ScriptedModel([computed, answer("None"), answer("None"), answer("None")])
    agent = served(model)
    with anyio.fail_after(120):
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
    served: Serve,
) -> None:
    computed = calls(("calculator", {"expression": "6 * 7"}))
    model = ScriptedModel([computed, answer("6 * 7 = 42")])
    agent = served(model)
    with anyio.fail_after(120):
        async with Client(build_server(agent)) as client:
            done = await client.call_tool("run_agent", {"task": "What is 6 * 7?"})
    assert done.structured_content is not None
    assert (done.structured_content["status"], done.structured_content["reason"]) == (
        "answered",
        None,
    )
