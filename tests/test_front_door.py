"""The Python API, `verity run` and `verity serve` are one agent: a task leaves one trace shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import PROJECT_ROOT
from tests.fixtures.serve import serve_env
from verity import Agent, TraceStore

TASK = "What is 1234 * 5678?"
TABLES = ("steps", "model_calls", "tool_calls", "verdicts", "messages", "approvals")


def trace_shape(database: Path, run_id: str) -> dict[str, Any]:
    """What a run's trace holds, without the ids, times and texts that differ between runs."""
    store = TraceStore(database)
    record = store.run(run_id)
    store.close()
    assert record is not None, f"run {run_id} is not in {database}"
    config = json.loads(record["config"])
    return {
        "status": record["status"],
        "model": record["model"],
        "model_settings": config["model"]["settings"],
        "run_settings": config["run"],
        "tables": {table: bool(record[table]) for table in TABLES},
        "tools": sorted({call["tool_name"] for call in record["tool_calls"]}),
        "step_outcomes": sorted({step["outcome"] for step in record["steps"]}),
    }


async def python_api_run(database: Path) -> str:
    async with Agent(trace_db=database) as agent:
        result = await agent.run(TASK)
    return result.run_id


def cli_run(database: Path, home: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "verity", "run", TASK, "--json", "--trace-db", str(database)],
        cwd=PROJECT_ROOT,
        env=serve_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    run_id: str = json.loads(done.stdout)["run_id"]
    return run_id


async def served_run(database: Path, home: Path) -> str:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "verity", "serve", "--trace-db", str(database)],
        env=serve_env(home),
        cwd=str(PROJECT_ROOT),
    )
    async with Client(params, mode="legacy", read_timeout_seconds=600) as client:
        done = await client.call_tool("run_agent", {"task": TASK})
    assert done.structured_content is not None, done.content
    run_id: str = done.structured_content["run_id"]
    return run_id


@pytest.mark.slow
async def test_the_python_api_verity_run_and_verity_serve_leave_the_same_trace_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the Python API reads the same variables as the command line: none of the user's
    for key in [k for k in os.environ if k.startswith("VERITY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with anyio.fail_after(900):
        shapes = {
            "python": trace_shape(tmp_path / "api.db", await python_api_run(tmp_path / "api.db")),
            "run": trace_shape(tmp_path / "run.db", cli_run(tmp_path / "run.db", tmp_path)),
            "serve": trace_shape(
                tmp_path / "serve.db", await served_run(tmp_path / "serve.db", tmp_path)
            ),
        }
    assert shapes["python"]["status"] == "completed"
    assert shapes["python"]["tables"]["model_calls"]
    assert shapes["python"]["model_settings"]["temperature"] == 0.0
    assert shapes["run"] == shapes["python"]
    assert shapes["serve"] == shapes["python"]
