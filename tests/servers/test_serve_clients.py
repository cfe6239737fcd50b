"""`verity serve` driven by real MCP clients with the embedded model.

A Python `mcp.Client` runs a task through stdio (2025-11-25) and through streamable HTTP
(2026-07-28), receives progress, and cancels a second task mid-generation; over HTTP a call that
needs approval is put to the client between rounds; the MCP Inspector CLI (a client nobody here
wrote) lists and calls `run_agent` over both transports.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.client.session import ElicitationFnT
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitRequestParams, ElicitResult, TextContent

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, free_port, server_env, stop, wait_for_port
from tests.fixtures.serve import node_path, serve_env, start_serve

pytestmark = pytest.mark.slow

TOKEN = "token-the-upstream-must-never-see-4242"
SUM_TASK = "What is 1234 * 5678 + 17?"
HELLO_TASK = "Say hello in one word."
NOTE_TASK = "Save a note that says hello, using the notes__write_note tool."
LONG_TASK = "Write a long story about a lighthouse keeper, at least 500 words."
BUSY = (
    "Error executing tool run_agent: Verity is busy: one run is working and 1 are waiting, the "
    "most this server queues (--max-queue 1). Retry later."
)


@dataclass
class Served:
    url: str
    home: Path
    upstream_headers: Path


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`verity serve --http` with a token, a queue of one, and one upstream MCP server (HTTP)
    that records the headers it receives."""
    home = tmp_path_factory.mktemp("served")
    upstream_port, port = free_port(), free_port()
    headers = home / "upstream-headers.jsonl"
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.header_recorder", str(upstream_port), str(headers)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **server_env()},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    notes = {
        "command": sys.executable,
        "args": ["-m", "tests.fixtures.faulty_server"],
        "cwd": str(PROJECT_ROOT),
        "env": server_env(),
        "includeTools": ["write_note"],
    }
    config = home / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "recorder": {"url": f"http://127.0.0.1:{upstream_port}/mcp"},
                    "notes": notes,
                }
            }
        )
    )
    try:
        wait_for_port(upstream_port, upstream)
        verity = start_serve(
            port,
            "--max-queue",
            "1",
            "--n-ctx",
            "4096",
            "--mcp-config",
            str(config),
            home=home,
            VERITY_SERVE_TOKEN=TOKEN,
        )
        try:
            yield Served(f"http://127.0.0.1:{port}/mcp", home, headers)
        finally:
            stop(verity)
    finally:
        stop(upstream)


class Progress:
    """A progress callback that keeps the messages and signals the interesting ones."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.working = anyio.Event()
        self.queued = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.messages.append(message or "")
        if "model working" in (message or ""):
            self.working.set()
        if (message or "").startswith("queued:"):
            self.queued.set()


@asynccontextmanager
async def http_client(
    served: Served, elicitation: ElicitationFnT | None = None
) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=600)) as http:
        transport = streamable_http_client(served.url, http_client=http)
        async with Client(transport, elicitation_callback=elicitation) as client:
            yield client


def assert_sum_answered(outcome: dict[str, Any] | None, progress: Progress) -> str:
    assert outcome is not None
    assert outcome["status"] == "answered"
    assert "7006669" in outcome["answer"]
    assert outcome["verified"] is None
    assert outcome["steps"] >= 2 and outcome["tokens"]["input"] > 0
    assert outcome["withheld"] == []
    assert progress.messages[0] == "step 1: model working"
    assert any(m.startswith("step 1: calling calculator(") for m in progress.messages)
    assert any(m == "step 1: calculator returned: 7006669" for m in progress.messages)
    run_id: str = outcome["run_id"]
    return run_id


async def cancel_mid_generation(client: Client, arguments: dict[str, Any]) -> None:
    """Start a long task, let the model generate for a moment, then cancel the call."""
    progress = Progress()
    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: client.call_tool("run_agent", arguments, progress_callback=progress)
        )
        await progress.working.wait()
        await anyio.sleep(1)  # the prompt is mostly cached: by now tokens are being generated
        group.cancel_scope.cancel()


def long_runs(database: Path) -> list[tuple[str, int, int]]:
    """(status, model calls, steps begun) of each run of the long task."""
    with sqlite3.connect(database) as conn:
        rows: list[tuple[str, int, int]] = conn.execute(
            "select status, (select count(*) from model_calls m where m.run_id = runs.id), "
            "(select count(*) from steps s where s.run_id = runs.id) from runs where task = ?",
            [LONG_TASK],
        ).fetchall()
    return rows


async def until_cancelled_is_recorded(database: Path) -> list[tuple[str, int, int]]:
    with anyio.fail_after(120):  # the loaded 2-core machine of CI: generation stops at a token
        while True:
            runs = long_runs(database)
            if not runs or runs[0][0] != "running":
                return runs
            await anyio.sleep(0.1)


async def test_http_client_runs_a_task_then_cancels_one_mid_generation_and_a_third_is_busy(
    served: Served,
) -> None:
    with anyio.fail_after(600):
        async with http_client(served) as client:
            era = client.protocol_version
            progress = Progress()
            done = await client.call_tool(
                "run_agent", {"task": SUM_TASK, "servers": []}, progress_callback=progress
            )
            run_id = assert_sum_answered(done.structured_content, progress)
            record = await client.call_tool("get_run", {"run_id": run_id})

            first, second = Progress(), Progress()
            arguments: dict[str, Any] = {"task": LONG_TASK, "servers": []}

            async def call(progress: Progress) -> None:
                await client.call_tool("run_agent", arguments, progress_callback=progress)

            async with anyio.create_task_group() as group:
                group.start_soon(call, first)
                await first.working.wait()
                group.start_soon(call, second)
                await second.queued.wait()
                busy = await client.call_tool("run_agent", arguments)
                await anyio.sleep(1)
                group.cancel_scope.cancel()
    assert era == "2026-07-28"
    assert record.structured_content is not None
    assert record.structured_content["status"] == "completed"
    assert [t["tool_name"] for t in record.structured_content["tool_calls"]] == ["calculator"]
    assert second.messages[0] == "queued: 1 run ahead"
    assert busy.is_error is True
    assert busy.content == [TextContent(type="text", text=BUSY)]
    # the first long run was cancelled while its model call was generating; the queued one
    # never started, so it is not in the trace
    assert await until_cancelled_is_recorded(served.home / "traces.db") == [("cancelled", 0, 1)]


async def test_stdio_client_runs_a_task_and_cancels_another_mid_generation(tmp_path: Path) -> None:
    database = tmp_path / "traces.db"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "verity", "serve", "--trace-db", str(database), "--n-ctx", "4096"],
        env=serve_env(tmp_path),
        cwd=str(PROJECT_ROOT),
    )
    with anyio.fail_after(600):
        async with Client(params, mode="legacy", read_timeout_seconds=600) as client:
            era = client.protocol_version
            progress = Progress()
            done = await client.call_tool(
                "run_agent", {"task": SUM_TASK}, progress_callback=progress
            )
            assert_sum_answered(done.structured_content, progress)
            await cancel_mid_generation(client, {"task": LONG_TASK})
            runs = await until_cancelled_is_recorded(database)
            after = await client.call_tool("list_runs", {})  # the server goes on serving
    assert era == "2025-11-25"
    assert runs == [("cancelled", 0, 1)]
    assert after.structured_content is not None
    assert [r["status"] for r in after.structured_content["runs"]] == ["cancelled", "completed"]


async def test_on_2026_over_http_an_approval_reaches_the_client_between_rounds_and_the_call_runs(
    served: Served,
) -> None:
    asked: list[str] = []

    async def person(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"decision": "allow once"})

    with anyio.fail_after(600):
        async with http_client(served, elicitation=person) as client:
            era = client.protocol_version
            progress = Progress()
            done = await client.call_tool(
                "run_agent", {"task": NOTE_TASK, "servers": ["notes"]}, progress_callback=progress
            )
    assert era == "2026-07-28"
    outcome = done.structured_content
    assert outcome is not None and outcome["withheld"] == []
    (question,) = asked
    assert question.startswith("Verity's agent wants to call notes__write_note(")
    with sqlite3.connect(served.home / "traces.db") as conn:
        calls = conn.execute(
            "select tool_name, result from tool_calls where run_id = ?", [outcome["run_id"]]
        ).fetchall()
    # the call ran once approved (the note's exact words are the model's: never asserted)
    assert any(
        name == "notes__write_note" and result.startswith("noted: ") for name, result in calls
    )
    assert any(m.startswith("step 1: notes__write_note returned") for m in progress.messages)


def inspector(*args: str, config: dict[str, Any], home: Path) -> dict[str, Any]:
    """Run the MCP Inspector CLI on the server in `config`; its one JSON object on stdout.

    The CLI waits 60 s for a result whatever its config says (it sets no timeout and asks for no
    progress), so the tasks it hands over are one-step ones.
    """
    path = home / "inspector.json"
    path.write_text(json.dumps({"mcpServers": {"verity": config}}))
    environment = {
        **os.environ,
        "PATH": node_path(),
        "HOME": str(home),
        "MCP_INSPECTOR_SECRET_STORE": "memory",
    }
    done = subprocess.run(
        [
            "mcp-inspector",
            "--cli",
            "--config",
            str(path),
            "--server",
            "verity",
            # its 30 s default ran out while `verity serve` started on a loaded machine
            "--connect-timeout",
            "300000",
            *args,
            "--format",
            "json",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)["result"]
    return result


def test_inspector_lists_and_calls_run_agent_over_stdio(tmp_path: Path) -> None:
    config = {
        "command": sys.executable,
        "args": ["-m", "verity", "serve", "--n-ctx", "4096"],
        "env": {"PYTHONPATH": str(PROJECT_ROOT), "VERITY_TRACE_DB": str(tmp_path / "traces.db")},
    }
    listed = inspector("--method", "tools/list", config=config, home=tmp_path)
    called = inspector(
        "--method",
        "tools/call",
        "--tool-name",
        "run_agent",
        "--tool-args-json",
        json.dumps({"task": HELLO_TASK}),
        config=config,
        home=tmp_path,
    )
    assert [t["name"] for t in listed["tools"]] == ["run_agent", "list_runs", "get_run"]
    assert listed["tools"][0]["outputSchema"]["properties"]["verified"]["anyOf"] == [
        {"type": "boolean"},
        {"type": "null"},
    ]
    assert called["isError"] is False
    outcome = called["structuredContent"]
    assert outcome["status"] == "answered"
    assert "hello" in outcome["answer"].lower()
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        assert conn.execute(
            "select status from runs where id = ?", [outcome["run_id"]]
        ).fetchone() == ("completed",)


def test_inspector_calls_run_agent_over_http_and_the_token_never_reaches_upstream(
    served: Served, tmp_path: Path
) -> None:
    config = {
        "type": "streamable-http",
        "url": served.url,
        "protocolEra": "modern",
        "headers": {"Authorization": f"Bearer {TOKEN}"},
    }
    listed = inspector("--method", "tools/list", config=config, home=tmp_path)
    called = inspector(
        "--method",
        "tools/call",
        "--tool-name",
        "run_agent",
        "--tool-args-json",
        json.dumps({"task": HELLO_TASK, "max_steps": 2, "servers": ["recorder"]}),
        config=config,
        home=tmp_path,
    )
    run_agent = listed["tools"][0]
    assert run_agent["name"] == "run_agent"
    assert run_agent["annotations"]["readOnlyHint"] is False  # an upstream server may write
    assert called["isError"] is False
    # nobody can approve the recorder's tools over this client: the run says so, or runs out
    assert called["structuredContent"]["status"] in ("tools_unavailable", "limit_exceeded")
    received = [json.loads(line) for line in served.upstream_headers.read_text().splitlines()]
    assert received, "the run never connected to the upstream server"
    assert all("authorization" not in headers for headers in received)
    assert TOKEN not in served.upstream_headers.read_text()
