"""Approval decisions reach the trace through the hooks: withheld tools once, every call."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import anyio
import sqlite_utils

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import server_env
from verity import TraceRecorder, TraceStore, run
from verity.testing import ScriptedModel, answer, calls
from verity.tools.approval import ApprovalGate
from verity.tools.mcp import MCPToolset, StdioServer
from verity.trace.migrations import MIGRATIONS


def faulty(gate: ApprovalGate) -> MCPToolset:
    server = StdioServer(
        name="faulty",
        command=sys.executable,
        args=("-m", "tests.fixtures.faulty_server"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
    )
    return MCPToolset([server], resource_tools=False, approval=gate)


async def test_withheld_tools_and_each_calls_decision_are_recorded_with_who_decided(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "traces.db")
    model = ScriptedModel(
        [
            calls(("faulty__write_note", {"text": "a"})),
            calls(("faulty__write_note", {"text": "b"})),
            answer("done"),
        ]
    )
    gate = ApprovalGate(allow=["faulty__write_*"])
    with anyio.fail_after(120):
        result = await run(
            "write", model=model, toolsets=[faulty(gate)], hooks=TraceRecorder(store)
        )
    model.assert_complete()
    record = store.run(result.run_id)
    assert record is not None
    rows = [
        (a["step"], a["tool_name"], a["outcome"], a["decided_by"], a["arguments"])
        for a in record["approvals"]
    ]
    withheld = [r for r in rows if r[2] == "withheld"]
    # the untrusted server's read-only hints count for nothing: echo is withheld like the rest
    assert (1, "faulty__echo", "withheld", "policy", None) in withheld
    assert len({r[1] for r in withheld}) == len(withheld)  # each once, not once per step
    assert [r for r in rows if r[2] != "withheld"] == [
        (1, "faulty__write_note", "allowed", "allow", json.dumps({"text": "a"})),
        (2, "faulty__write_note", "allowed", "allow", json.dumps({"text": "b"})),
    ]


def test_a_database_from_before_the_approvals_migration_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    db.table("_verity_migrations").create({"name": str, "applied_at": str}, pk="name")
    before = [m for m in MIGRATIONS if m.__name__ < "m010_approvals"]
    for function in before:
        function(db)
        db.table("_verity_migrations").insert({"name": function.__name__, "applied_at": "x"})
    db.conn.commit()
    db.conn.close()
    store = TraceStore(path)
    assert set(store.db.table("approvals").columns_dict) == {
        "id",
        "run_id",
        "step",
        "tool_name",
        "outcome",
        "decided_by",
        "reason",
        "arguments",
        "created_at",
    }
