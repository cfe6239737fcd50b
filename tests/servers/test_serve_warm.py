"""`verity serve` keeps its model, and so its KV cache, between runs: a second run evaluates only
what is new to it, with no help from the prefix cache on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest
from mcp import Client

from verity import Agent, LlamaCppModel, ModelSettings
from verity.servers.verity import ServedAgent, build_server

pytestmark = pytest.mark.slow


async def test_a_second_served_run_evaluates_only_its_new_tokens(
    embedded_path: Path, tmp_path: Path
) -> None:
    settings = ModelSettings(temperature=0, n_ctx=2048, max_tokens=64, prefix_cache=False)
    model = LlamaCppModel(embedded_path, settings)
    agent = Agent(model=model, trace_db=tmp_path / "traces.db")
    try:
        with anyio.fail_after(600):
            async with Client(build_server(ServedAgent(agent))) as client:
                for task in ("What is 1234 * 5678?", "What is 4321 * 8765?"):
                    outcome = await client.call_tool("run_agent", {"task": task, "max_steps": 2})
                    assert outcome.structured_content is not None
    finally:
        agent.close()
        model.close()
    with sqlite3.connect(tmp_path / "traces.db") as db:
        first_calls = db.execute(
            "select input_tokens, input_tokens_evaluated from model_calls where step = 1 "
            "and purpose = 'agent' order by rowid"
        ).fetchall()
    (first_prompt, first_evaluated), (second_prompt, second_evaluated) = first_calls
    assert first_evaluated == first_prompt > 150
    # the system prompt and the calculator's schema stayed in the KV cache: only the task is new
    assert second_evaluated < 30
