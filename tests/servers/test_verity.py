"""Verity as an MCP server, in-process: what it lists, reads from the trace, and refuses."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.types import INVALID_PARAMS, TextContent, TextResourceContents, ToolAnnotations

from verity import (
    Agent,
    RunEnded,
    RunStarted,
    TraceRecorder,
    TraceStore,
    UserError,
    parse_mcp_config,
)
from verity.servers._run_queue import RunQueue, ServerBusy
from verity.servers.verity import ServedAgent, build_server


@pytest.fixture
def python_agent(embedded_path: Path, tmp_path: Path) -> Iterator[Agent]:
    """The embedded model (never loaded by these tests) with a real trace."""
    agent = Agent(model=str(embedded_path), trace_db=tmp_path / "traces.db")
    yield agent
    agent.close()


@pytest.fixture
def store(python_agent: Agent) -> TraceStore:
    assert python_agent.store is not None
    return python_agent.store


@pytest.fixture
def agent(python_agent: Agent) -> ServedAgent:
    return ServedAgent(python_agent, max_queue=1)


async def record_run(store: TraceStore, run_id: str, task: str, answer: str) -> None:
    recorder = TraceRecorder(store)
    await recorder.on_run_start(RunStarted(run_id=run_id, task=task, model="tiny"))
    await recorder.on_run_end(
        RunEnded(run_id=run_id, status="completed", answer=answer, verified=True, verify_rounds=1)
    )


async def test_run_agent_is_listed_with_its_output_schema_and_is_read_only_with_only_the_calculator(
    agent: ServedAgent,
) -> None:
    with anyio.fail_after(120):
        async with Client(build_server(agent)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            templates = (await client.list_resource_templates()).resource_templates
            prompts = [p.name for p in (await client.list_prompts()).prompts]
    assert sorted(tools) == ["get_run", "list_runs", "run_agent"]
    run_agent = tools["run_agent"]
    assert run_agent.input_schema["required"] == ["task"]
    assert set(run_agent.input_schema["properties"]) == {"task", "verify", "max_steps", "servers"}
    assert run_agent.output_schema is not None
    assert set(run_agent.output_schema["required"]) == {
        "run_id",
        "status",
        "answer",
        "verified",
        "verdict",
        "steps",
        "tokens",
        "cost_usd",
        "withheld",
    }
    assert run_agent.annotations == ToolAnnotations(
        title="Run a Verity agent",
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=False,
        open_world_hint=False,
    )
    for name in ("list_runs", "get_run"):
        assert tools[name].annotations == ToolAnnotations(
            read_only_hint=True, idempotent_hint=True, open_world_hint=False
        )
    assert [t.uri_template for t in templates] == ["verity://runs/{run_id}"]
    assert prompts == ["verified_answer", "explain_run"]


async def test_run_agent_is_not_read_only_when_upstream_servers_may_be_used(
    embedded_path: Path, tmp_path: Path
) -> None:
    files = {"command": sys.executable, "args": ["-m", "verity.servers.toolbox"]}
    mcp = parse_mcp_config({"mcpServers": {"files": files}})
    python_agent = Agent(model=str(embedded_path), mcp=mcp, trace_db=tmp_path / "t.db")
    agent = ServedAgent(python_agent)
    with anyio.fail_after(120):
        async with Client(build_server(agent)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["run_agent"].annotations == ToolAnnotations(
        title="Run a Verity agent",
        read_only_hint=False,
        destructive_hint=True,
        idempotent_hint=False,
        open_world_hint=True,
    )
    assert "MCP servers it may use: files" in (tools["run_agent"].description or "")
    python_agent.close()


def test_a_served_agent_must_trace_its_runs(embedded_path: Path) -> None:
    with pytest.raises(UserError) as refused:
        ServedAgent(Agent(model=str(embedded_path), trace=False))
    assert str(refused.value) == "A served agent must trace its runs: build it with trace=True."


async def test_list_runs_get_run_and_the_run_resource_read_the_trace(
    agent: ServedAgent, store: TraceStore
) -> None:
    await record_run(store, "20260101-000000-aaaaaa", "What is 6 * 7?", "42")
    await record_run(store, "20260101-000001-bbbbbb", "What is 2 + 2?", "4")
    with anyio.fail_after(120):
        async with Client(build_server(agent), mode="legacy") as client:
            listed = await client.call_tool("list_runs", {"limit": 5})
            one = await client.call_tool("get_run", {"run_id": "20260101-000000-aaaaaa"})
            read = await client.read_resource("verity://runs/20260101-000000-aaaaaa")
            missing = await client.call_tool("get_run", {"run_id": "nope"})
            with pytest.raises(MCPError) as not_found:
                await client.read_resource("verity://runs/nope")
    assert listed.structured_content is not None
    runs = listed.structured_content["runs"]
    assert {(r["run_id"], r["answer"], r["verified"]) for r in runs} == {
        ("20260101-000001-bbbbbb", "4", True),
        ("20260101-000000-aaaaaa", "42", True),
    }
    started = [r["started_at"] for r in runs]
    assert started == sorted(started, reverse=True)  # newest first
    assert one.structured_content is not None
    assert one.structured_content["task"] == "What is 6 * 7?"
    assert one.structured_content["status"] == "completed"
    assert set(one.structured_content) >= {"steps", "model_calls", "tool_calls", "verdicts"}
    (contents,) = read.contents
    assert isinstance(contents, TextResourceContents)
    assert contents.mime_type == "application/json"
    assert json.loads(contents.text) == one.structured_content
    assert missing.is_error is True
    assert missing.content == [
        TextContent(
            type="text",
            text="Error executing tool get_run: No run 'nope' in the trace. List the runs with "
            "list_runs.",
        )
    ]
    assert not_found.value.code == INVALID_PARAMS


async def test_run_agent_refuses_bad_options_before_anything_runs(
    agent: ServedAgent, store: TraceStore
) -> None:
    calls: list[tuple[dict[str, Any], str]] = [
        ({"servers": ["files"]}, "Unknown MCP server 'files'. Servers: none are configured."),
        ({"verify": "twice"}, "Unknown --verify 'twice'."),
        ({"max_steps": 51}, "max_steps must be between 1 and 50, not 51."),
        (
            {"verify": "all:self,consensus:50"},
            "verify asks for 50 consensus samples; this server runs at most 10 per call.",
        ),
        (
            {"verify": "recompute:99"},
            "verify asks for 99 recompute samples; this server runs at most 10 per call.",
        ),
    ]
    with anyio.fail_after(120):
        async with Client(build_server(agent)) as client:
            results = [
                await client.call_tool("run_agent", {"task": "What is 6 * 7?", **options})
                for options, _ in calls
            ]
            empty = await client.call_tool("run_agent", {"task": ""})
    for result, (_, message) in zip(results, calls, strict=True):
        assert result.is_error is True
        assert isinstance(result.content[0], TextContent)
        assert result.content[0].text.startswith(f"Error executing tool run_agent: {message}")
    assert empty.is_error is True
    assert store.runs() == []  # nothing was queued or recorded


async def test_prompts_ask_for_a_verified_answer_and_explain_a_run(agent: ServedAgent) -> None:
    with anyio.fail_after(120):
        async with Client(build_server(agent)) as client:
            verified = await client.get_prompt("verified_answer", {"question": "Is 97 prime?"})
            explain = await client.get_prompt("explain_run", {"run_id": "r1"})
    (message,) = verified.messages
    assert isinstance(message.content, TextContent)
    assert "run_agent" in message.content.text and "Is 97 prime?" in message.content.text
    (message,) = explain.messages
    assert isinstance(message.content, TextContent)
    assert "verity://runs/r1" in message.content.text


async def test_queue_serves_in_order_and_refuses_past_its_limit() -> None:
    queue = RunQueue(max_waiting=2)
    order: list[str] = []
    release = anyio.Event()
    waits: list[int] = []

    async def note_wait(ahead: int) -> None:
        waits.append(ahead)

    async def run(name: str) -> None:
        async with queue.turn(on_wait=note_wait):
            order.append(name)
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for name in ("a", "b", "c"):
                group.start_soon(run, name)
                await anyio.wait_all_tasks_blocked()
            assert (queue.running, queue.waiting) == (True, 2)
            with pytest.raises(ServerBusy) as busy:
                async with queue.turn():
                    pass
            release.set()
    assert order == ["a", "b", "c"]
    assert waits == [1, 2]
    assert str(busy.value) == (
        "Verity is busy: one run is working and 2 are waiting, the most this server queues "
        "(--max-queue 2). Retry later."
    )


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    queue = RunQueue(max_waiting=1)
    release = anyio.Event()

    async def hold() -> None:
        async with queue.turn():
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(hold)
            await anyio.wait_all_tasks_blocked()
            with anyio.move_on_after(0.05):
                async with queue.turn():
                    pytest.fail("a waiter ran while the model was held")
            assert queue.waiting == 0
            release.set()
        async with queue.turn():
            assert queue.running
    assert (queue.running, queue.waiting) == (False, 0)
