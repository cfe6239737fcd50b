"""A client that dies mid `run_agent` gives the shared model back: its run is cancelled.

The real `verity serve --http` runs on a slow OpenAI-compatible model server (every model call
takes a while and asks for another tool call, so a run goes on to its max_steps). A client in a
subprocess starts a long run and is killed with SIGKILL while the model works; a second client
then asks for a quick answer. Both protocol eras: 2025-11-25 answers on the POST's own event
stream, which nobody reads once the client has died; 2026-07-28 ends the request with it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, free_port, server_env, stop, wait_for_port
from tests.fixtures.serve import start_serve

LONG_STEPS = 20
CALLER = """
import sys, anyio
from mcp import Client

async def main() -> None:
    arguments = {"task": "count for ever", "max_steps": int(sys.argv[3])}
    async with Client(sys.argv[1], mode=sys.argv[2]) as client:
        await client.call_tool("run_agent", arguments)

anyio.run(main)
"""


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """`verity serve --http` on a model that takes 0.5 s a call: its URL, trace and model log."""
    model_port, port = free_port(), free_port()
    model_log = tmp_path / "model.log"
    model = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.slow_model", str(model_port), "0.5", str(model_log)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **server_env()},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(model_port, model)
        base_url = f"http://127.0.0.1:{model_port}/v1"
        server = start_serve(port, "--base-url", base_url, "--api-model", "slow", home=tmp_path)
        try:
            yield f"http://127.0.0.1:{port}/mcp", tmp_path / "traces.db", model_log
        finally:
            stop(server)
    finally:
        stop(model)


def model_calls(log: Path, task: str) -> int:
    return log.read_text().count(task) if log.exists() else 0


async def until(check: Callable[[], bool], seconds: float = 60) -> None:
    with anyio.fail_after(seconds):
        while True:
            if check():
                return
            await anyio.sleep(0.05)


def start_caller(url: str, era: str) -> subprocess.Popen[bytes]:
    """A client in a process of its own that starts a long run and waits for it."""
    return subprocess.Popen(
        [sys.executable, "-c", CALLER, url, era, str(LONG_STEPS)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **server_env()},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def runs(database: Path) -> list[tuple[str, str, int]]:
    """(task, status, model calls) of every run, oldest first."""
    with sqlite3.connect(database) as conn:
        return conn.execute(
            "select task, status, (select count(*) from model_calls m where m.run_id = runs.id) "
            "from runs order by started_at"
        ).fetchall()


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_a_client_killed_mid_run_agent_has_its_run_cancelled_and_the_next_is_served(
    served: tuple[str, Path, Path], era: str
) -> None:
    url, database, model_log = served
    caller = start_caller(url, era)
    try:
        await until(lambda: model_calls(model_log, "count for ever") >= 2)
    finally:
        os.killpg(caller.pid, signal.SIGKILL)
        caller.wait(timeout=10)
    killed, calls_then = time.monotonic(), model_calls(model_log, "count for ever")
    with anyio.fail_after(60):
        async with Client(url, mode=era) as client:
            quick = await client.call_tool("run_agent", {"task": "a quick one"})
    waited = time.monotonic() - killed
    print(f"{era}: the next client was answered {waited:.1f} s after the first one died")
    assert quick.structured_content is not None
    assert quick.structured_content["status"] == "answered"
    await until(lambda: runs(database)[0][1] != "running", seconds=10)
    [(task, status, calls), second] = runs(database)
    assert (task, status) == ("count for ever", "cancelled")
    assert calls < LONG_STEPS
    assert second[:2] == ("a quick one", "completed")
    # at most the model call that was starting as the client died, nothing after
    assert model_calls(model_log, "count for ever") <= calls_then + 1
