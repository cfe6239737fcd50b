"""A server whose tools publish broken or awkward schemas never ends a run: the unusable tool is
left out with one warning, the awkward one gets a relaxed grammar, and the task is done with the
well-behaved one. Real MCP server in a subprocess, real model, real trace database."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, server_env
from verity import LlamaCppModel, RunSettings, TraceRecorder, TraceStore, run
from verity.tools.approval import ApprovalGate
from verity.tools.mcp import MCPToolset, StdioServer

LOOKUP_PROBLEM = "its $ref '#/definitions/Key' cannot be resolved"


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def schema_toolset() -> MCPToolset:
    """The server's tools, allowed without asking (they are not marked read-only)."""
    return MCPToolset([schema_server()], approval=ApprovalGate(allow=["schemas__*"]))


def schema_server() -> StdioServer:
    return StdioServer(
        name="schemas",
        command=sys.executable,
        args=("-m", "tests.fixtures.schema_server"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
    )


async def test_a_tool_whose_schema_jsonschema_cannot_use_is_left_out_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(120), caplog.at_level(logging.WARNING, logger="verity.mcp"):
        async with schema_toolset() as toolset:
            names = [spec.name for spec in await toolset.list_tools()]
            (status,) = toolset.status()
    assert names == ["schemas__multiply", "schemas__annotate"]
    assert (status.tools, status.unavailable) == (
        ["multiply", "annotate"],
        {"lookup": LOOKUP_PROBLEM},
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"MCP server 'schemas': tool 'lookup' is unavailable: {LOOKUP_PROBLEM}"
    ]


@pytest.mark.slow
async def test_a_task_gets_the_right_answer_next_to_broken_schema_tools(
    greedy_model: LlamaCppModel, tmp_path: Path
) -> None:
    store = TraceStore(tmp_path / "trace.db")
    with anyio.fail_after(300):
        result = await run(
            "What is 37 times 91? Use the multiply tool.",
            model=greedy_model,
            toolsets=[schema_toolset()],
            settings=RunSettings(max_steps=4),
            hooks=TraceRecorder(store),
        )
    assert "3367" in (result.answer or "")
    record = store.run(result.run_id)
    assert record is not None
    calls = [(c["tool_name"], json.loads(c["arguments"])) for c in record["tool_calls"]]
    assert calls[0] == ("schemas__multiply", {"a": 37, "b": 91})
    grammars = [
        (g["tool_name"], g["level"], json.loads(g["dropped"])) for g in record["tool_grammars"]
    ]
    assert grammars == [("schemas__annotate", "relaxed", ["maxLength", "not"])]
    store.close()
