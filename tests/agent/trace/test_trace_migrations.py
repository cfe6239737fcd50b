"""Migrating a trace database from every earlier schema version keeps every row, and a blank
database gets the whole schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from verity import TraceStore
from verity.trace.migrations import MIGRATIONS

ROWS: dict[str, list[dict[str, Any]]] = {
    "runs": [
        {
            "id": "r1",
            "task": "double 21",
            "model": "m",
            "status": "completed",
            "answer": "42",
            "started_at": "2026-01-01T00:00:00.000+00:00",
            "duration_s": 1.5,
        },
        {"id": "r2", "task": "fail", "model": "m", "status": "failed", "error": "boom"},
    ],
    "steps": [
        {"id": 1, "run_id": "r1", "step": 1, "outcome": "tool_calls"},
        {"id": 2, "run_id": "r1", "step": 2, "outcome": "accepted"},
    ],
    "model_calls": [
        {
            "id": 1,
            "run_id": "r1",
            "step": 1,
            "model": "m",
            "input_tokens": 10,
            "output_tokens": 3,
            "content": "",
            "reasoning": "I will double it",
            "tool_calls": "[]",
        },
        {
            "id": 2,
            "run_id": "r1",
            "step": 2,
            "model": "m",
            "input_tokens": 20,
            "output_tokens": 1,
            "content": "42",
        },
    ],
    "tool_calls": [
        {
            "id": 1,
            "run_id": "r1",
            "step": 1,
            "tool_call_id": "c0",
            "tool_name": "double",
            "arguments": '{"x": 21}',
            "result": "42",
            "is_error": 0,
        }
    ],
    "verdicts": [{"id": 1, "run_id": "r1", "step": 2, "ok": 1, "checked": 0, "verifier": "none"}],
}
"""Rows every schema since m001 can hold, in the columns m001 created."""


def _migrated(value: Any) -> Any:
    """A value as m014 leaves it: times in SQLite's own text form, UTC."""
    return "2026-01-01 00:00:00.000" if value == "2026-01-01T00:00:00.000+00:00" else value


def _build(path: Path, applied: int) -> None:
    """A database as Verity left it after its first `applied` migrations (-1: m001..m004 and
    m010_approvals, the schema of the release before m005)."""
    db = sqlite_utils.Database(path)
    approvals = [m for m in MIGRATIONS if m.__name__ == "m010_approvals"]
    functions = MIGRATIONS[:4] + approvals if applied == -1 else MIGRATIONS[:applied]
    for function in functions:
        function(db)
        db.table("_verity_migrations").insert({"name": function.__name__, "applied_at": "then"})
    for table, rows in ROWS.items():
        db.table(table).insert_all(rows)
    if applied >= 4 or applied == -1:
        db.table("verdict_samples").insert(
            {
                "id": 1,
                "verdict_id": 1,
                "run_id": "r1",
                "seed": 1,
                "answer": "42",
                "sample_run_id": "r2",
            }
        )
    db.conn.close()


@pytest.mark.parametrize("applied", [*range(1, len(MIGRATIONS)), -1])
def test_migrating_from_an_earlier_schema_keeps_every_row(tmp_path: Path, applied: int) -> None:
    path = tmp_path / "t.db"
    _build(path, applied)
    store = TraceStore(path)
    names = [r["name"] for r in store.read("select name from _verity_migrations order by rowid")]
    assert sorted(names) == sorted(m.__name__ for m in MIGRATIONS)  # each applied once
    for table, rows in ROWS.items():
        columns = ", ".join(rows[0])
        kept = store.read(f"select {columns} from {table} order by rowid")
        expected = [{c: _migrated(row.get(c)) for c in rows[0]} for row in rows]
        assert kept == expected, table
    if applied >= 4 or applied == -1:
        assert store.read("select sample_run_id from verdict_samples") == [{"sample_run_id": "r2"}]
    if applied < 8:  # m008 indexes the rows already there; later, a run is indexed as it ends
        assert _searched(store, "double") == ["r1"]
    summary = store.read("select id, input_tokens, tool_calls from run_summary order by id")
    assert summary == [
        {"id": "r1", "input_tokens": 30, "tool_calls": 1},
        {"id": "r2", "input_tokens": None, "tool_calls": 0},
    ]
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)


def test_a_blank_database_gets_every_table_view_and_index(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    names = {r["name"] for r in store.read("select name from sqlite_master")}
    assert names >= {
        "runs",
        "steps",
        "model_calls",
        "tool_calls",
        "verdicts",
        "verdict_samples",
        "messages",
        "contents",
        "runs_fts",
        "model_calls_fts",
        "tool_calls_fts",
        "run_summary",
        "tool_stats",
        "model_stats",
        "idx_runs_status",
    }
    assert store.read("pragma journal_mode") == [{"journal_mode": "wal"}]
    assert store.read("pragma synchronous") == [{"synchronous": 1}]  # NORMAL
    store.close()


def _searched(store: TraceStore, words: str) -> list[str]:
    rows = store.read(
        "select runs.id from runs_fts join runs on runs.rowid = runs_fts.rowid "
        "where runs_fts match ?",
        [words],
    )
    return [r["id"] for r in rows]
