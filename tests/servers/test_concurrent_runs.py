"""Concurrent runs: at most N served runs at once on a server backend, one on the in-process
model, each with its own trace rows; `Agent.run` called concurrently outside `async with`.

The model here is a gate standing in for a server backend: it counts the calls inside it and
holds them until the test opens it, so "how many at once" is observed, never timed. The real
server backend is exercised by tests/servers/test_serve_concurrent.py.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import server_env
from verity import Agent, LlamaCppModel, parse_mcp_config
from verity._concurrency import RunTurns
from verity.messages import Message, ModelResponse, Usage
from verity.models.base import ToolChoice
from verity.pricing import Price
from verity.servers._run_queue import RunQueue, ServerBusy
from verity.servers.verity import ServedAgent, build_server
from verity.tools.base import ToolSpec


class GateModel:
    """Answers every call once the gate is open, counting the calls waiting inside it."""

    name = "gate"

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.calls = 0
        self.open = anyio.Event()
        self._entered = anyio.Event()

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        self.calls += 1
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        self._entered.set()
        self._entered = anyio.Event()
        try:
            await self.open.wait()
        finally:
            self.inside -= 1
        usage = Usage(prompt_tokens=100, prompt_tokens_evaluated=100, completion_tokens=10)
        return ModelResponse(content="Hello there.", raw="Hello there.", usage=usage)

    async def wait_inside(self, calls: int) -> None:
        """Until `calls` calls are inside at once."""
        while self.inside < calls:
            await self._entered.wait()


def run_rows(database: Path) -> list[tuple[str, str, int]]:
    """(task, status, model calls) of every run, by task."""
    with sqlite3.connect(database) as conn:
        rows: list[tuple[str, str, int]] = conn.execute(
            "select task, status, (select count(*) from model_calls m where m.run_id = runs.id) "
            "from runs order by task"
        ).fetchall()
    return rows


async def test_the_queue_runs_n_at_once_then_lines_up_then_refuses() -> None:
    queue = RunQueue(max_waiting=1, max_running=2)
    release = anyio.Event()
    waits: list[int] = []

    async def note_wait(ahead: int) -> None:
        waits.append(ahead)

    async def run() -> None:
        async with queue.turn(on_wait=note_wait):
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(run)
                await anyio.wait_all_tasks_blocked()
            assert (queue.running, queue.waiting) == (2, 1)
            with pytest.raises(ServerBusy) as busy:
                async with queue.turn():
                    pass
            release.set()
    assert (queue.running, queue.waiting) == (0, 0)
    assert waits == [1]
    assert str(busy.value) == (
        "Verity is busy: 2 runs are working, the most it runs at once, and 1 are waiting, the "
        "most this server queues (--max-queue 1). Retry later."
    )


async def test_requests_arriving_together_take_the_free_places_without_waiting() -> None:
    queue = RunQueue(max_waiting=0, max_running=3)
    release = anyio.Event()
    waits: list[int] = []

    async def note_wait(ahead: int) -> None:
        waits.append(ahead)

    async def run() -> None:
        async with queue.turn(on_wait=note_wait):
            await release.wait()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for _ in range(3):  # no checkpoint between them: all three ask at once
                group.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            assert (queue.running, queue.waiting) == (3, 0)
            release.set()
    assert waits == []


async def test_served_runs_on_a_server_backend_go_n_at_once_each_traced_apart(
    tmp_path: Path,
) -> None:
    model = GateModel()
    database = tmp_path / "traces.db"
    agent = Agent(model=model, trace_db=database)
    api = Price("api", input=2.0, output=10.0, cached_input=0.5)
    served = ServedAgent(agent, max_concurrent=3, max_queue=10, prices={"api": api})
    outcomes: list[dict[str, Any]] = []
    queued = anyio.Semaphore(0)

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        if (message or "").startswith("queued:"):
            queued.release()

    async def call(client: Client, index: int) -> None:
        arguments = {"task": f"Say hello, {index}."}
        result = await client.call_tool("run_agent", arguments, progress_callback=progress)
        assert result.structured_content is not None, result.content
        outcomes.append(result.structured_content)

    with anyio.fail_after(30):
        async with Client(build_server(served)) as client, anyio.create_task_group() as group:
            for index in range(6):
                group.start_soon(call, client, index)
            await model.wait_inside(3)
            for _ in range(3):
                await queued.acquire()  # the other three wait in line, outside the model
            assert (model.inside, served.queue.running, served.queue.waiting) == (3, 3, 3)
            model.open.set()
    agent.close()
    assert model.most_inside == 3
    assert [o["status"] for o in outcomes] == ["answered"] * 6
    assert len({o["run_id"] for o in outcomes}) == 6
    # each run's own tokens (100 in, 10 out) priced at $2 and $10 per million
    assert [(o["tokens"], o["cost_usd"]) for o in outcomes] == [
        ({"input": 100, "output": 10}, {"api": (100 * 2.0 + 10 * 10.0) / 1_000_000})
    ] * 6
    assert run_rows(database) == [(f"Say hello, {i}.", "completed", 1) for i in range(6)]


def test_the_in_process_model_is_served_one_run_at_a_time(
    embedded_path: Path, tmp_path: Path
) -> None:
    agent = Agent(model=str(embedded_path), trace_db=tmp_path / "t.db")  # never loaded here
    served = ServedAgent(agent, max_concurrent=8)
    agent.close()
    assert (served.max_concurrent, served.queue.max_running) == (1, 1)


async def test_an_in_process_model_takes_runs_in_turn_and_a_server_all_at_once(
    embedded_path: Path,
) -> None:
    for model, most in ((LlamaCppModel(embedded_path), 1), (GateModel(), None)):
        turns = RunTurns(model)
        inside = peak = 0
        release = anyio.Event()

        async def run() -> None:
            nonlocal inside, peak
            async with turns.turn():  # noqa: B023 - awaited before the loop moves on
                inside += 1
                peak = max(peak, inside)
                await release.wait()  # noqa: B023
                inside -= 1

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(run)
                await anyio.wait_all_tasks_blocked()
                release.set()
        assert (turns.limit, peak) == (most, 1 if most == 1 else 3)


def test_agent_runs_go_at_once_outside_async_with_each_with_its_own_mcp_session(
    tmp_path: Path,
) -> None:
    notes = {
        "command": sys.executable,
        "args": ["-m", "tests.fixtures.faulty_server"],
        "cwd": str(PROJECT_ROOT),
        "env": server_env(),
    }
    mcp = parse_mcp_config({"mcpServers": {"notes": notes}})
    model = GateModel()
    database = tmp_path / "traces.db"
    agent = Agent(model=model, mcp=mcp, trace_db=database)
    answers: list[str] = []

    async def main() -> None:
        async def run(index: int) -> None:
            result = await agent.run(f"Say hello, {index}.")
            answers.append(result.answer)

        with anyio.fail_after(120):  # two MCP servers start on a loaded 2-core machine
            async with anyio.create_task_group() as group:
                for index in range(2):
                    group.start_soon(run, index)
                await model.wait_inside(2)
                model.open.set()

    try:
        anyio.run(main)
    finally:
        agent.close()
    # both were inside the model at once; without a session each, the run that left the
    # shared MCP session last failed to close it (it was opened in the other run's task)
    assert answers == ["Hello there."] * 2
    assert run_rows(database) == [(f"Say hello, {i}.", "completed", 1) for i in range(2)]


def test_serve_says_the_in_process_model_runs_one_at_a_time(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "verity", "serve", "--max-concurrent", "4"],
        cwd=PROJECT_ROOT,
        env={**server_env(), "VERITY_TRACE_DB": str(tmp_path / "t.db"), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == (
        "verity: the in-process model runs one task at a time: --max-concurrent applies to a "
        "--base-url server; serving one run at a time."
    )
