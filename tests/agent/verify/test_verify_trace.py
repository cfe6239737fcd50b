"""Verdicts in the SQLite trace: linked to the run and step, with their scope (migration m002),
each run's verification outcome (m003) and the consensus samples behind a verdict (m004)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest
import sqlite_utils

from verity import (
    ModelResponse,
    RunSettings,
    TraceRecorder,
    TraceStore,
    Usage,
    Verdict,
    VerifyStep,
    run,
    seeded_solver,
)
from verity.cli._show import print_run
from verity.models.base import Model
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import tool
from verity.tools.toolset import FunctionToolset
from verity.trace.migrations import (
    MIGRATIONS,
    m001_initial,
    m002_verdict_scope,
    m003_run_verification,
)
from verity.trace.query import full_run
from verity.verify import Candidate, Consensus, SelfCheck


@tool(read_only=True)
def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: First factor.
        b: Second factor.
    """
    return a * b


class RejectFirst:
    """Rejects the first candidate, accepts the next."""

    def __init__(self) -> None:
        self.seen = 0

    async def verify(self, candidate: Candidate) -> Verdict:
        self.seen += 1
        if self.seen == 1:
            return Verdict(ok=False, verifier="reject-first", feedback="Again.", confidence=0.2)
        return Verdict(ok=True, verifier="reject-first", confidence=0.9)


def test_m002_adds_the_verdict_scope_to_a_database_from_the_previous_schema(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    db = sqlite_utils.Database(path)
    m001_initial(db)
    db.table("_verity_migrations").insert({"name": "m001_initial", "applied_at": "earlier"})
    db.table("runs").insert({"id": "r1", "task": "t", "status": "completed"})
    db.table("verdicts").insert({"run_id": "r1", "step": 1, "ok": 1, "verifier": "none"})
    db.conn.close()
    store = TraceStore(path)
    assert store.db.table("_verity_migrations").count == len(MIGRATIONS)
    assert store.db.table("verdicts").columns_dict["scope"] is str
    [row] = store.db.table("verdicts").rows
    assert row["scope"] == "answer"
    store.close()


async def test_every_verdict_is_stored_with_its_run_step_scope_and_findings(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    model = ScriptedModel([calls(("multiply", {"a": 6, "b": 9})), answer("54"), answer("42")])
    with anyio.fail_after(5):
        result = await run(
            "What is 6 times 7?",
            model=model,
            toolsets=[FunctionToolset([multiply])],
            verifier=RejectFirst(),
            settings=RunSettings(check_tool_arguments=True),
            hooks=TraceRecorder(store),
        )
    record = store.run(result.run_id)
    assert record is not None
    rows = [
        (v["run_id"], v["step"], v["scope"], v["verifier"], v["ok"], v["confidence"])
        for v in record["verdicts"]
    ]
    assert rows == [
        (result.run_id, 1, "tool_calls", "tool-arguments", 0, None),
        (result.run_id, 2, "answer", "reject-first", 0, 0.2),
        (result.run_id, 3, "answer", "reject-first", 1, 0.9),
    ]
    assert json.loads(record["verdicts"][0]["findings"]) == [
        {
            "claim": "multiply argument 9",
            "ok": False,
            "evidence": "This number is in neither the task nor any earlier tool result.",
        }
    ]
    assert [s["outcome"] for s in record["steps"]] == ["tool_calls", "rejected", "accepted"]
    store.close()
    model.assert_complete()


def test_m003_adds_the_verification_outcome_to_runs_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = sqlite_utils.Database(path)
    for earlier in (m001_initial, m002_verdict_scope):
        earlier(db)
        db.table("_verity_migrations").insert({"name": earlier.__name__, "applied_at": "earlier"})
    db.table("runs").insert_all(
        [
            {"id": "checked", "task": "t", "status": "completed", "answer": "42"},
            {"id": "unchecked", "task": "t", "status": "completed", "answer": "42"},
            {"id": "killed", "task": "t", "status": "running"},
        ]
    )
    db.table("verdicts").insert_all(
        [
            {"run_id": "checked", "step": 1, "ok": 0, "checked": 1, "scope": "answer"},
            {"run_id": "checked", "step": 2, "ok": 1, "checked": 1, "scope": "answer"},
            {"run_id": "checked", "step": 2, "ok": 0, "checked": 1, "scope": "tool_calls"},
            {"run_id": "unchecked", "step": 1, "ok": 1, "checked": 0, "scope": "answer"},
        ]
    )
    db.conn.close()
    store = TraceStore(path)
    assert [m["name"] for m in store.db.table("_verity_migrations").rows][2] == (
        "m003_run_verification"
    )
    assert store.db.table("runs").columns_dict["verified"] is int
    assert store.db.table("runs").columns_dict["verify_rounds"] is int
    rows = store.db.execute(
        "select id, status, answer, verified, verify_rounds from runs order by id"
    ).fetchall()
    assert rows == [
        ("checked", "completed", "42", 1, 2),
        ("killed", "interrupted", None, None, None),  # m005: its process is long gone
        ("unchecked", "completed", "42", None, 0),
    ]
    store.close()


class RejectAll:
    """Rejects every candidate."""

    async def verify(self, candidate: Candidate) -> Verdict:
        return Verdict(ok=False, verifier="reject-all", feedback="No.")


async def test_each_run_records_whether_its_answer_was_verified_and_in_how_many_rounds(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "t.db")
    recorder = TraceRecorder(store)
    with anyio.fail_after(5):
        accepted = await run(
            "6 * 7?",
            model=ScriptedModel([answer("41"), answer("42")]),
            verifier=RejectFirst(),
            hooks=recorder,
        )
        exhausted = await run(
            "6 * 7?",
            model=ScriptedModel([answer("41"), answer("40")]),
            verifier=RejectAll(),
            settings=RunSettings(max_verify_rounds=2),
            hooks=recorder,
        )
        unverified = await run("6 * 7?", model=ScriptedModel([answer("42")]), hooks=recorder)
    rows = store.db.execute("select id, verified, verify_rounds from runs").fetchall()
    assert sorted(rows) == sorted(
        [(accepted.run_id, 1, 2), (exhausted.run_id, 0, 2), (unverified.run_id, None, 0)]
    )
    assert (accepted.verified, exhausted.verified, unverified.verified) == (True, False, None)
    store.close()


def test_m004_adds_the_samples_table_and_run_parents_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = sqlite_utils.Database(path)
    for earlier in (m001_initial, m002_verdict_scope, m003_run_verification):
        earlier(db)
        db.table("_verity_migrations").insert({"name": earlier.__name__, "applied_at": "earlier"})
    db.table("runs").insert({"id": "r1", "task": "t", "status": "completed", "verify_rounds": 0})
    db.conn.close()
    store = TraceStore(path)
    assert store.db.table("_verity_migrations").count == len(MIGRATIONS)
    assert store.db.execute("select id, status, parent_run_id from runs").fetchall() == [
        ("r1", "completed", None)
    ]
    assert store.db.table("verdict_samples").columns_dict["sample_run_id"] is str
    assert [r["id"] for r in store.runs()] == ["r1"]
    store.close()


def said(text: str, *, prompt_tokens: int, completion_tokens: int) -> ModelResponse:
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    return answer(text).model_copy(update={"usage": usage})


async def test_consensus_samples_are_traced_as_runs_linked_to_the_verified_run(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "t.db")
    recorder = TraceRecorder(store)
    thinking = Usage(prompt_tokens=35, completion_tokens=12)
    attempts: dict[int, ScriptedModel] = {
        1: ScriptedModel(
            [
                calls(("multiply", {"a": 9, "b": 2})).model_copy(update={"usage": thinking}),
                said("It is 18.", prompt_tokens=40, completion_tokens=6),
            ]
        ),
        2: ScriptedModel([said("$20", prompt_tokens=30, completion_tokens=3)]),
    }

    def attempt(seed: int) -> Model:
        return attempts[seed]

    tools = FunctionToolset([multiply])
    solve = seeded_solver(attempt, hooks=recorder, toolsets=[tools])
    model = ScriptedModel(
        [said("9 * 2 = 18: the answer is 18.", prompt_tokens=50, completion_tokens=7)]
    )
    with anyio.fail_after(5):
        result = await run(
            "What is 9 times 2?",
            model=model,
            toolsets=[tools],
            verifier=Consensus(solve, samples=3),
            hooks=recorder,
        )
    store.close()
    [verify_step] = [s for s in result.steps if isinstance(s, VerifyStep)]
    first, second = (sample.run_id for sample in verify_step.verdict.samples)
    with sqlite3.connect(tmp_path / "t.db") as db:
        samples = db.execute(
            "select s.run_id, s.step, seed, answer, normalised, agrees, input_tokens, "
            "output_tokens, sample_run_id, v.verifier from verdict_samples as s "
            "join verdicts as v on v.id = s.verdict_id order by seed"
        ).fetchall()
        runs = db.execute(
            "select id, parent_run_id, status, answer, verified, verify_rounds from runs "
            "order by parent_run_id is not null, id"
        ).fetchall()
        sample_tool_calls = db.execute(
            "select run_id, tool_name, result from tool_calls"
        ).fetchall()
    assert samples == [
        (result.run_id, 1, 1, "It is 18.", "18", 1, 75, 18, first, "consensus"),
        (result.run_id, 1, 2, "$20", "20", 0, 30, 3, second, "consensus"),
    ]
    assert runs == [
        (result.run_id, None, "completed", "9 * 2 = 18: the answer is 18.", 1, 1),
        *sorted(
            [
                (first, result.run_id, "completed", "It is 18.", None, 0),
                (second, result.run_id, "completed", "$20", None, 0),
            ]
        ),
    ]
    assert sample_tool_calls == [(first, "multiply", "18.0")]
    for scripted in (model, *attempts.values()):
        scripted.assert_complete()


async def test_an_inconclusive_acceptance_is_stored_as_such_and_the_run_as_unverified(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "t.db")
    unconfirmed = Verdict(ok=True, verifier="self-check", conclusive=False)

    class Unconfirmed:
        async def verify(self, candidate: Candidate) -> Verdict:
            return unconfirmed

    with anyio.fail_after(5):
        result = await run(
            "6 * 7?",
            model=ScriptedModel([answer("42")]),
            verifier=Unconfirmed(),
            hooks=TraceRecorder(store),
        )
    record = store.run(result.run_id)
    assert record is not None
    [row] = record["verdicts"]
    assert (row["ok"], row["conclusive"], record["verified"]) == (1, 0, 0)
    store.close()


async def test_the_corrected_step_an_answer_went_on_from_is_stored_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = TraceStore(tmp_path / "t.db")
    slipped = "Cakes and pies:\nTotal: 204 + 160 + 330 = 794 dollars."
    whole = "Cakes and pies:\nTotal: 204 + 160 + 330 = 694 dollars."
    model = ScriptedModel([answer(slipped), answer(whole)], continues_answers=True)
    with anyio.fail_after(5):
        result = await run(
            "Add 204, 160 and 330.", model=model, verifier=SelfCheck(), hooks=TraceRecorder(store)
        )
    record = store.run(result.run_id)
    assert record is not None
    first, second = record["verdicts"]
    assert first["resume_from"] == "Cakes and pies:\nTotal: 204 + 160 + 330 = 694"
    assert second["resume_from"] is None
    shown_record = full_run(store, result.run_id)
    assert shown_record is not None
    print_run(shown_record, reasoning=False)
    shown = capsys.readouterr().out
    assert "went on from the corrected step: ...Total: 204 + 160 + 330 = 694\n" in shown
    store.close()
