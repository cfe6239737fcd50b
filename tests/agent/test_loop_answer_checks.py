"""Answer checks and run status in the loop: a scripted model for the sequencing, real MCP servers
for the tools that are not there."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, server_env
from verity import RunSettings, TraceRecorder, TraceStore, Verdict, run
from verity.replay import replay_run
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import tool
from verity.tools.mcp import MCPToolset, StdioServer
from verity.tools.toolset import FunctionToolset
from verity.verify import Candidate, Programmatic


@tool(read_only=True)
def list_directory(path: str) -> str:
    """List a directory.

    Args:
        path: The directory.
    """
    return "[FILE] a.txt\n[FILE] b.md\n[DIR] sub"


FILES = FunctionToolset([list_directory])
TASK = "List the files in /tmp/work."
LISTED = calls(("list_directory", {"path": "/tmp/work"}))


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


async def test_a_refused_answer_goes_back_with_the_reason_and_the_fixed_one_is_answered() -> None:
    model = ScriptedModel([LISTED, answer("None"), answer("a.txt and b.md")])
    with anyio.fail_after(5):
        result = await run(TASK, model=model, toolsets=[FILES])
    assert (result.answer, result.status, result.reason, result.verified) == (
        "a.txt and b.md",
        "answered",
        None,
        None,
    )
    feedback = model.requests[2][0][-1]
    assert feedback.role == "user"
    assert feedback.content.startswith(
        "Your answer was not accepted:\n- the answer is the bare value None, which answers nothing"
    )
    model.assert_complete()


async def test_an_answer_refused_in_every_round_ends_the_run_rejected_with_the_reason() -> None:
    model = ScriptedModel([LISTED, answer("None"), answer("The files are a.txt and report.pdf.")])
    with anyio.fail_after(5):
        result = await run(
            TASK, model=model, toolsets=[FILES], settings=RunSettings(max_verify_rounds=2)
        )
    assert (result.answer, result.status, result.verified) == ("None", "rejected", None)
    assert result.reason == (
        "answer-checks: the answer is the bare value None, which answers nothing"
    )
    model.assert_complete()


async def test_instructions_instead_of_a_call_go_back_naming_the_run_s_tools() -> None:
    how_to = answer("To list the files in /tmp/work, run `ls /tmp/work` in a terminal.")
    model = ScriptedModel([how_to, LISTED, answer("a.txt and b.md")])
    with anyio.fail_after(5):
        result = await run(TASK, model=model, toolsets=[FILES])
    assert (result.answer, result.status) == ("a.txt and b.md", "answered")
    feedback = model.requests[1][0][-1].content
    assert "tells the user how to do it" in feedback
    assert "Call the tool that does it (list_directory)" in feedback
    model.assert_complete()


@tool(read_only=True)
def read_query(query: str) -> str:
    """Run a SELECT query.

    Args:
        query: The SQL.
    """
    return "Database error: no such table: customer"


async def test_an_answer_after_only_failed_calls_ends_rejected_naming_the_tool() -> None:
    query = calls(("read_query", {"query": "SELECT COUNT(*) FROM customer"}))
    model = ScriptedModel([query, answer("No rows found."), answer("No rows found.")])
    with anyio.fail_after(5):
        result = await run(
            "How many rows are in the table customer?",
            model=model,
            toolsets=[FunctionToolset([read_query])],
            settings=RunSettings(max_verify_rounds=2),
        )
    assert (result.answer, result.status) == ("No rows found.", "rejected")
    assert result.reason is not None
    assert "every tool call failed (read_query; the last said" in result.reason
    model.assert_complete()


async def test_without_answer_checks_any_answer_is_answered_as_before() -> None:
    model = ScriptedModel([LISTED, answer("None")])
    with anyio.fail_after(5):
        result = await run(
            TASK, model=model, toolsets=[FILES], settings=RunSettings(check_answers=False)
        )
    assert (result.answer, result.status, result.reason) == ("None", "answered", None)
    model.assert_complete()


async def test_a_refused_answer_never_reaches_the_verifier_a_checked_one_keeps_its_verdict() -> (
    None
):
    judged: list[str] = []

    def confirm(candidate: Candidate) -> bool:
        judged.append(candidate.answer)
        return False

    model = ScriptedModel([LISTED, answer("None"), answer("a.txt and b.md")])
    verifier = Programmatic(confirm, name="mine", feedback="Not good enough.")
    with anyio.fail_after(5):
        result = await run(
            TASK,
            model=model,
            toolsets=[FILES],
            verifier=verifier,
            settings=RunSettings(max_verify_rounds=2),
        )
    assert judged == ["a.txt and b.md"]
    assert (result.answer, result.status, result.verified) == (
        "a.txt and b.md",
        "unverified",
        False,
    )
    assert result.reason == "mine: mine: check failed"
    model.assert_complete()


async def test_an_accepted_but_unconfirmed_answer_is_unverified_with_the_reason() -> None:
    model = ScriptedModel([answer("4")])
    verifier = Programmatic(lambda c: Verdict(ok=True, verifier="mine", conclusive=False))
    with anyio.fail_after(5):
        result = await run("What is 2 + 2?", model=model, verifier=verifier)
    assert (result.status, result.verified) == ("unverified", False)
    assert result.reason == "mine found no problem but no independent derivation confirmed it"


def missing_server() -> StdioServer:
    return StdioServer(
        name="time",
        command="/nonexistent/verity-no-such-server-binary",
        env=server_env(),
        connect_timeout=5,
    )


def exiting_server() -> StdioServer:
    return StdioServer(
        name="clock",
        command=sys.executable,
        args=("-c", "raise SystemExit(3)"),
        env=server_env(),
        connect_timeout=5,
    )


@pytest.mark.parametrize("server", [missing_server, exiting_server], ids=["missing", "exits"])
async def test_a_server_that_did_not_start_makes_the_run_tools_unavailable(
    server: Callable[[], StdioServer],
) -> None:
    spec = server()
    model = ScriptedModel([answer("It is 720.")])
    with anyio.fail_after(120):
        result = await run("What time is it in Tokyo?", model=model, toolsets=[MCPToolset([spec])])
    assert result.status == "tools_unavailable"
    assert result.reason is not None
    assert result.reason.startswith(f"MCP server {spec.name!r} did not start: ")
    assert result.answer == "It is 720."  # kept, for the trace and --json
    model.assert_complete()


async def test_a_server_whose_tools_were_all_withheld_makes_the_run_tools_unavailable() -> None:
    untrusted = StdioServer(
        name="faulty",
        command=sys.executable,
        args=("-m", "tests.fixtures.faulty_server"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
        connect_timeout=60,
    )
    model = ScriptedModel([answer("hello")])
    with anyio.fail_after(90):
        result = await run(
            "Echo hello.", model=model, toolsets=[MCPToolset([untrusted], resource_tools=False)]
        )
    assert model.requests[0][1] == []  # nothing was offered
    assert (result.status, result.reason) == (
        "tools_unavailable",
        "every tool of MCP server 'faulty' was withheld: they need approval and nobody could "
        "give it",
    )


async def test_a_failed_server_is_not_a_run_failure_without_answer_checks() -> None:
    model = ScriptedModel([answer("It is 720.")])
    with anyio.fail_after(120):
        result = await run(
            "What time is it in Tokyo?",
            model=model,
            toolsets=[MCPToolset([missing_server()])],
            settings=RunSettings(check_answers=False),
        )
    assert (result.status, result.reason) == ("answered", None)


async def test_a_run_with_a_refused_answer_replays_to_the_same_end(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    model = ScriptedModel([LISTED, answer("None"), answer("a.txt and b.md")])
    with anyio.fail_after(10):
        result = await run(TASK, model=model, toolsets=[FILES], hooks=TraceRecorder(store))
        record = store.run(result.run_id)
        assert record is not None
        replayed = await replay_run(record, [FunctionToolset([list_directory])])
    store.close()
    assert (replayed.compared, replayed.difference, replayed.ended) == (1, None, "answer")
