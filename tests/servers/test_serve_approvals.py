"""Approvals in a served run: asked of the MCP client's user, else withheld and reported.

Each test serves one tool that makes a real approval-guarded call to the faulty fixture server's
unannotated `write_note` (over stdio), with `ClientApprovals` as the approver, and drives it
through a real MCP client in each protocol era: on 2026-07-28 the call goes on in the background
and its questions reach the client between rounds, as a served run's do.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client import ClientRequestContext
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import (
    CallToolResult,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    InputRequiredResult,
)

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, server_env
from verity.servers._approvals import ClientApprovals
from verity.servers._detached import DetachedRun, DetachedRuns
from verity.tools.approval import ApprovalGate
from verity.tools.mcp import MCPToolset, StdioServer
from verity.tools.toolset import call_tool


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


async def guarded_call(approvals: ClientApprovals, tool: str) -> dict[str, Any]:
    """Call an upstream tool the way a served run would, `approvals` answering for the user."""
    upstream = StdioServer(
        name="faulty",
        command=sys.executable,
        args=("-m", "tests.fixtures.faulty_server"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
    )
    gate = ApprovalGate(ask=approvals.asker, on_decision=approvals.note)
    async with MCPToolset(
        [upstream], resource_tools=False, elicitation=approvals.forward, approval=gate
    ) as toolset:
        arguments = {"text": "hello"} if tool == "write_note" else {"action": "deploy"}
        result = await call_tool(toolset, f"faulty__{tool}", arguments, time_limit=10)
    withheld = approvals.withheld
    return {"result": result.content, "is_error": result.is_error, "withheld": withheld}


def guarded_server() -> MCPServer:
    """One tool, `attempt(tool)`: make the guarded call while the request is open (2025-11-25)."""
    server = MCPServer("guarded", log_level="WARNING")

    @server.tool()
    async def attempt(tool: str, ctx: Context) -> dict[str, Any]:
        return await guarded_call(ClientApprovals(ctx, timeout=5), tool)

    return server


class Person:
    """An MCP client's user: answers each elicitation from a script, remembering the questions."""

    def __init__(self, *answers: ElicitResult) -> None:
        self.answers = list(answers)
        self.asked: list[ElicitRequestParams] = []

    async def __call__(
        self, context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        self.asked.append(params)
        return self.answers.pop(0)


async def attempt(mode: str, person: Person | None, tool: str = "write_note") -> dict[str, Any]:
    with anyio.fail_after(120):
        async with Client(guarded_server(), mode=mode, elicitation_callback=person) as client:
            result = await client.call_tool("attempt", {"tool": tool})
    outcome: dict[str, Any] = result.structured_content or {}
    return outcome


def withheld_note(outcome: dict[str, Any], tool: str) -> str:
    """The one `withheld` entry about a tool the gate kept from the agent."""
    (entry,) = [e for e in outcome["withheld"] if e.startswith(f"faulty__{tool}: not offered: ")]
    return str(entry)


async def test_tools_needing_approval_are_withheld_and_reported_when_the_client_cannot_elicit() -> (
    None
):
    outcome = await attempt("legacy", None)
    assert outcome["is_error"] is True
    assert outcome["result"].startswith("Unknown tool 'faulty__write_note'.")  # never offered
    entry = withheld_note(outcome, "write_note")
    assert "nobody can be asked" in entry
    assert entry.endswith("(the MCP client declares no elicitation)")


async def test_on_2026_without_a_detached_run_tools_needing_approval_are_withheld() -> None:
    person = Person()
    outcome = await attempt("2026-07-28", person)
    assert person.asked == []
    assert outcome["result"].startswith("Unknown tool 'faulty__write_note'.")
    entry = withheld_note(outcome, "write_note")
    assert entry.endswith("(the request has no channel back to the client (MCP 2026-07-28))")


async def test_the_client_user_is_asked_through_elicitation_and_an_approved_call_runs() -> None:
    person = Person(ElicitResult(action="accept", content={"decision": "allow once"}))
    outcome = await attempt("legacy", person)
    assert outcome == {"result": "noted: hello", "is_error": False, "withheld": []}
    (question,) = person.asked
    assert 'faulty__write_note({"text": "hello"})' in question.message
    assert question.requested_schema["properties"]["decision"]["enum"] == [  # type: ignore[union-attr]
        "allow once",
        "always allow",
        "deny",
    ]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (ElicitResult(action="decline"), "the user chose decline"),
        (ElicitResult(action="cancel"), "the user chose cancel"),
        (ElicitResult(action="accept", content={"decision": "deny"}), "denied by the user"),
    ],
)
async def test_a_declined_cancelled_or_denied_approval_keeps_the_call_from_running(
    answer: ElicitResult, why: str
) -> None:
    outcome = await attempt("legacy", Person(answer))
    assert outcome["is_error"] is True
    assert "noted" not in outcome["result"]
    assert outcome["withheld"] == [f'faulty__write_note({{"text": "hello"}}): {why}']


async def test_an_upstream_servers_question_is_forwarded_to_the_client_user() -> None:
    person = Person(
        ElicitResult(action="accept", content={"decision": "allow once"}),  # may `confirm` run?
        ElicitResult(action="accept", content={"ok": True}),  # the upstream server's question
    )
    outcome = await attempt("legacy", person, tool="confirm")
    assert outcome == {"result": "confirmed", "is_error": False, "withheld": []}
    assert person.asked[1].message == "MCP server 'faulty' asks: Really deploy?"


def detached_server(timeout: float = 30) -> MCPServer:
    """`attempt(tool)` as a 2026-07-28 served run does it: in the background, its approval
    questions returned to the client between rounds."""
    runs: DetachedRuns[dict[str, Any]] = DetachedRuns(timeout=timeout)

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[None]:
        async with runs.hosting():
            yield

    server = MCPServer("detached", log_level="WARNING", lifespan=lifespan)

    @server.tool()
    async def attempt(tool: str, ctx: Context) -> dict[str, Any] | InputRequiredResult:
        async def report(progress: float, message: str) -> None:
            await ctx.report_progress(progress, None, message)

        if ctx.request_state is not None:
            return await runs.resume(ctx.request_state, ctx.input_responses or {}, report)

        async def work(run: DetachedRun) -> dict[str, Any]:
            return await guarded_call(ClientApprovals(ctx, timeout=timeout, detached=run), tool)

        return await runs.start(work, report)

    return server


async def test_on_2026_the_client_user_is_asked_between_rounds_and_an_approved_call_runs() -> None:
    person = Person(ElicitResult(action="accept", content={"decision": "allow once"}))
    with anyio.fail_after(120):
        async with Client(
            detached_server(), mode="2026-07-28", elicitation_callback=person
        ) as client:
            result = await client.call_tool("attempt", {"tool": "write_note"})
    assert result.structured_content == {
        "result": "noted: hello",
        "is_error": False,
        "withheld": [],
    }
    (question,) = person.asked
    assert 'faulty__write_note({"text": "hello"})' in question.message


async def test_on_2026_an_approval_and_an_upstream_question_take_one_round_each() -> None:
    person = Person(
        ElicitResult(action="accept", content={"decision": "allow once"}),
        ElicitResult(action="accept", content={"ok": True}),
    )
    with anyio.fail_after(120):
        async with Client(
            detached_server(), mode="2026-07-28", elicitation_callback=person
        ) as client:
            result = await client.call_tool("attempt", {"tool": "confirm"})
    assert result.structured_content == {"result": "confirmed", "is_error": False, "withheld": []}
    assert person.asked[1].message == "MCP server 'faulty' asks: Really deploy?"


async def test_on_2026_a_declined_approval_keeps_the_call_from_running() -> None:
    person = Person(ElicitResult(action="decline"))
    with anyio.fail_after(120):
        async with Client(
            detached_server(), mode="2026-07-28", elicitation_callback=person
        ) as client:
            result = await client.call_tool("attempt", {"tool": "write_note"})
    outcome = result.structured_content
    assert outcome is not None
    assert outcome["is_error"] is True
    assert "noted" not in outcome["result"]  # the tool never ran
    assert outcome["withheld"] == ['faulty__write_note({"text": "hello"}): the user chose decline']


async def test_on_2026_a_client_that_never_answers_gets_the_call_denied_not_run() -> None:
    with anyio.fail_after(120):
        async with Client(detached_server(timeout=0.5), mode="2026-07-28") as client:
            first = await client.session.call_tool(
                "attempt", {"tool": "write_note"}, allow_input_required=True
            )
            assert isinstance(first, InputRequiredResult)
            await anyio.sleep(1.5)  # the question times out: the run answers "no" and goes on
            later = await client.session.call_tool(
                "attempt",
                {"tool": "write_note"},
                request_state=first.request_state,
                allow_input_required=True,
            )
    assert isinstance(later, CallToolResult)
    assert later.structured_content is not None
    assert later.structured_content["is_error"] is True
    assert later.structured_content["withheld"] == [
        'faulty__write_note({"text": "hello"}): no answer within 0.5 s'
    ]
