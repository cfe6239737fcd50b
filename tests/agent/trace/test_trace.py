"""The SQLite trace: migrations on open, and every run recorded by the recorder hook."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from verity import (
    ModelCallEnded,
    ModelCallStarted,
    RunEnded,
    RunLimitExceeded,
    RunSettings,
    RunStarted,
    TraceRecorder,
    TraceStore,
    UserError,
    run,
)
from verity.messages import ModelResponse, ToolGrammar
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import tool
from verity.tools.toolset import FunctionToolset
from verity.trace.migrations import MIGRATIONS


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


def test_opening_a_blank_database_applies_every_migration(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    applied = [row["name"] for row in store.db.table("_verity_migrations").rows]
    assert applied == [m.__name__ for m in MIGRATIONS]
    assert set(store.db.table_names()) >= {"runs", "steps", "model_calls", "tool_calls", "verdicts"}
    assert store.db.table("model_calls").columns_dict["input_tokens_evaluated"] is int
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    store.close()


def test_reopening_does_not_reapply_migrations(tmp_path: Path) -> None:
    TraceStore(tmp_path / "t.db").close()
    store = TraceStore(tmp_path / "t.db")
    assert store.db.table("_verity_migrations").count == len(MIGRATIONS)
    store.close()


def test_an_unopenable_path_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError) as caught:
        TraceStore(tmp_path / "file" / "t.db")
    assert caught.value.field == "trace_db"


def test_a_file_that_is_not_sqlite_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(UserError):
        TraceStore(path)


async def test_a_run_is_recorded_with_model_calls_tool_calls_and_verdict(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    model = ScriptedModel([calls(("double", {"x": 21})), answer("42")])
    with anyio.fail_after(5):
        result = await run(
            "double 21",
            model=model,
            toolsets=[FunctionToolset([double])],
            hooks=TraceRecorder(store),
        )
    record = store.run(result.run_id)
    assert record is not None
    assert (record["status"], record["answer"], record["task"]) == ("completed", "42", "double 21")
    assert [s["outcome"] for s in record["steps"]] == ["tool_calls", "accepted"]
    assert len(record["model_calls"]) == 2
    tool_call = record["tool_calls"][0]
    assert (tool_call["tool_name"], json.loads(tool_call["arguments"])) == ("double", {"x": 21})
    assert (tool_call["result"], tool_call["is_error"]) == ("42", 0)
    verdict = record["verdicts"][0]
    assert (verdict["ok"], verdict["checked"], verdict["verifier"]) == (1, 0, "none")
    store.close()


async def test_a_run_that_hits_max_steps_is_marked_so_and_keeps_its_steps(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    model = ScriptedModel([calls(("double", {"x": 1}))])
    with anyio.fail_after(5), pytest.raises(RunLimitExceeded) as caught:
        await run(
            "x",
            model=model,
            toolsets=[FunctionToolset([double])],
            hooks=TraceRecorder(store),
            settings=RunSettings(max_steps=1),
        )
    assert caught.value.run_id is not None
    record = store.run(caught.value.run_id)
    assert record is not None
    assert record["status"] == "limit_exceeded"
    assert record["error"] == "No final answer after 1 steps (max_steps)."
    assert len(record["tool_calls"]) == 1
    store.close()


async def test_a_cancelled_run_is_marked_cancelled(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")

    @tool
    async def wait() -> str:
        """Wait forever."""
        await anyio.sleep(60)
        return "never"

    model = ScriptedModel([calls(("wait", {}))])
    with anyio.move_on_after(0.3):
        await run(
            "x",
            model=model,
            toolsets=[FunctionToolset([wait])],
            hooks=TraceRecorder(store),
            run_id="r-cancel",
        )
    record = store.run("r-cancel")
    assert record is not None
    assert record["status"] == "cancelled"
    store.close()


def test_the_database_is_plain_sqlite_readable_by_another_connection(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    store.db.table("runs").insert({"id": "r1", "task": "t", "status": "running"})
    store.db.conn.commit()
    with sqlite3.connect(tmp_path / "t.db") as other:
        assert other.execute("select status from runs where id='r1'").fetchone() == ("running",)
    store.close()


async def test_relaxed_tool_grammars_are_recorded_once_per_run(tmp_path: Path) -> None:
    relaxed = ToolGrammar(tool="annotate", level="relaxed", dropped=["maxLength", "not"])
    store = TraceStore(tmp_path / "t.db")
    recorder = TraceRecorder(store)
    await recorder.on_run_start(RunStarted(run_id="r1", task="task", model="m"))
    for step in (1, 2):
        await recorder.on_model_start(ModelCallStarted(run_id="r1", step=step, messages=[]))
        await recorder.on_model_end(
            ModelCallEnded(
                run_id="r1", step=step, response=ModelResponse(content="x", tool_grammars=[relaxed])
            )
        )
    await recorder.on_run_end(RunEnded(run_id="r1", status="completed", answer="x"))
    record = store.run("r1")
    assert record is not None
    rows = [
        (g["step"], g["tool_name"], g["level"], json.loads(g["dropped"]))
        for g in record["tool_grammars"]
    ]
    assert rows == [(1, "annotate", "relaxed", ["maxLength", "not"])]
    store.close()
