"""`verity serve --max-concurrent 8` against a real OpenAI-compatible server (llama-cpp-python's,
serving the embedded model), driven by eight MCP clients over streamable HTTP at once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fixtures.processes import assert_no_leftovers, free_port, stop
from tests.fixtures.serve import start_serve

pytestmark = pytest.mark.slow

NAMES = ["Ann", "Bob", "Cid", "Dan", "Eve", "Fay", "Gus"]
CANCELLED_TASK = "Write a long story about a lighthouse keeper, at least 500 words."


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def task(name: str) -> str:
    return f"Say hello to {name} in one short sentence."


class Client8:
    """One MCP client of its own (its own HTTP connection and session) calling run_agent."""

    def __init__(self, url: str, task: str) -> None:
        self.url, self.task = url, task
        self.messages: list[str] = []
        self.working = anyio.Event()
        self.outcome: dict[str, Any] | None = None

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.messages.append(message or "")
        if "model working" in (message or ""):
            self.working.set()

    async def run(self) -> None:
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)) as http:
            async with Client(streamable_http_client(self.url, http_client=http)) as client:
                result = await client.call_tool(
                    "run_agent", {"task": self.task}, progress_callback=self.progress
                )
        assert result.structured_content is not None, result.content
        self.outcome = result.structured_content


def recorded(database: Path) -> dict[str, tuple[str, int, int, list[str]]]:
    """Per task: the run's status, its steps, its model calls, and the user messages of its
    conversation."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "select id, task, status, (select count(*) from steps s where s.run_id = runs.id), "
            "(select count(*) from model_calls m where m.run_id = runs.id) from runs"
        ).fetchall()
        found = {}
        for run_id, text, status, steps, calls in rows:
            users = conn.execute(
                "select content from messages where run_id = ? and role = 'user' "
                "order by conversation, position",
                [run_id],
            ).fetchall()
            found[text] = (status, steps, calls, [u for (u,) in users])
    return found


async def until_ended(database: Path, count: int) -> dict[str, tuple[str, int, int, list[str]]]:
    with anyio.fail_after(120):  # the cancelled run ends when its model call is abandoned
        while True:
            runs = recorded(database)
            if len(runs) == count and all(r[0] != "running" for r in runs.values()):
                return runs
            await anyio.sleep(0.2)


async def test_eight_clients_run_at_once_each_traced_apart_and_one_cancelled_leaves_the_rest(
    server_url: str, tmp_path: Path
) -> None:
    port = free_port()
    verity = start_serve(
        port,
        "--base-url",
        server_url,
        "--api-model",
        "embedded",
        "--temperature",
        "0",
        "--max-tokens",
        "24",
        "--max-steps",
        "3",
        "--max-concurrent",
        "8",
        home=tmp_path,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    clients = [Client8(url, task(name)) for name in NAMES]
    cancelled = Client8(url, CANCELLED_TASK)
    try:
        with anyio.fail_after(240):
            async with anyio.create_task_group() as group:
                for client in clients:
                    group.start_soon(client.run)
                for client in clients:
                    await client.working.wait()
                # the eighth run starts while the seven are going, its request last in line at
                # the model server; cancelled once its model call is under way
                async with anyio.create_task_group() as doomed:
                    doomed.start_soon(cancelled.run)
                    await cancelled.working.wait()
                    doomed.cancel_scope.cancel()
        runs = await until_ended(tmp_path / "traces.db", 8)
    finally:
        stop(verity)
    # no run waited in Verity's queue: all eight went at once
    assert not any(m.startswith("queued:") for c in [*clients, cancelled] for m in c.messages)
    assert cancelled.outcome is None
    assert runs[CANCELLED_TASK][0] == "cancelled"
    outcomes = [c.outcome for c in clients]
    assert all(o is not None for o in outcomes)
    assert len({o["run_id"] for o in outcomes if o is not None}) == 7
    for client in clients:
        outcome = client.outcome
        assert outcome is not None
        status, steps, calls, users = runs[client.task]
        # every run completed with its own steps and model calls, on its own conversation
        assert status == "completed"
        assert outcome["steps"] == steps >= 1 and calls >= 1
        others = {c.task for c in [*clients, cancelled]} - {client.task}
        assert users[0] == client.task and not others & set(users)
        assert outcome["tokens"]["input"] > 0 and outcome["tokens"]["output"] > 0
        assert outcome["cost_usd"]["local"] == 0 and outcome["cost_usd"]["deepseek-reasoner"] > 0
