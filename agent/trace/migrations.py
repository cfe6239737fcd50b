"""Schema migrations of the trace database, applied in order and recorded by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

__all__ = ["MIGRATIONS", "migrate"]

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[Migration] = []


def migration(function: Migration) -> Migration:
    """Register a migration; its function name is its permanent id."""
    MIGRATIONS.append(function)
    return function


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply every migration not yet recorded in `_verity_migrations`; return their names."""
    table = db.table("_verity_migrations")
    if not table.exists():
        table.create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in table.rows}
    applied = []
    for function in MIGRATIONS:
        if function.__name__ in done:
            continue
        with db.conn:
            function(db)
            table.insert({"name": function.__name__, "applied_at": datetime.now(UTC).isoformat()})
        applied.append(function.__name__)
    return applied


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    """Runs, their steps, model calls, tool calls and verdicts."""
    db.table("runs").create(
        {
            "id": str,
            "task": str,
            "model": str,
            "status": str,
            "answer": str,
            "error": str,
            "started_at": str,
            "ended_at": str,
            "duration_s": float,
        },
        pk="id",
    )
    db.table("steps").create(
        {
            "id": int,
            "run_id": str,
            "step": int,
            "outcome": str,
            "started_at": str,
            "ended_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("model_calls").create(
        {
            "id": int,
            "run_id": str,
            "step": int,
            "model": str,
            "input_tokens": int,
            "input_tokens_evaluated": int,
            "output_tokens": int,
            "content": str,
            "reasoning": str,
            "raw": str,
            "finish_reason": str,
            "tool_calls": str,
            "invalid_calls": str,
            "duration_s": float,
            "prefill_s": float,
            "decode_s": float,
            "output_tokens_per_s": float,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("tool_calls").create(
        {
            "id": int,
            "run_id": str,
            "step": int,
            "tool_call_id": str,
            "tool_name": str,
            "arguments": str,
            "result": str,
            "is_error": int,
            "duration_s": float,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("verdicts").create(
        {
            "id": int,
            "run_id": str,
            "step": int,
            "ok": int,
            "checked": int,
            "verifier": str,
            "findings": str,
            "feedback": str,
            "confidence": float,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    for table in ("steps", "model_calls", "tool_calls", "verdicts"):
        db.table(table).create_index(["run_id", "step"])
    db.table("runs").create_index(["started_at"])


@migration
def m002_verdict_scope(db: sqlite_utils.Database) -> None:
    """What a verdict judged: a candidate answer, or a step's tool-call arguments."""
    db.table("verdicts").add_column("scope", str)
    db.execute("update verdicts set scope = 'answer'")


@migration
def m003_run_verification(db: sqlite_utils.Database) -> None:
    """Whether a run's answer was verified (NULL: no verifier checked one), and in how many rounds.

    Finished runs get both from their recorded verdicts; runs still `running` keep NULL.
    """
    runs = db.table("runs")
    runs.add_column("verified", int)
    runs.add_column("verify_rounds", int)
    checked = "verdicts.run_id = runs.id and scope = 'answer' and checked = 1"
    db.execute(
        f"update runs set verify_rounds = (select count(*) from verdicts where {checked}) "
        "where status != 'running'"
    )
    db.execute(
        "update runs set verified = (select ok from verdicts where "
        f"{checked} order by id desc limit 1) where verify_rounds > 0"
    )
    # only a completed run has a verified answer (the loop's own rule)
    db.execute("update runs set verified = 0 where verified = 1 and status != 'completed'")


@migration
def m004_verdict_samples(db: sqlite_utils.Database) -> None:
    """The independent attempts a consensus verdict compared, each linked to its own run."""
    db.table("verdict_samples").create(
        {
            "id": int,
            "verdict_id": int,
            "run_id": str,
            "step": int,
            "seed": int,
            "answer": str,
            "normalised": str,
            "agrees": int,
            "input_tokens": int,
            "output_tokens": int,
            "sample_run_id": str,
        },
        pk="id",
        foreign_keys=[
            ("verdict_id", "verdicts", "id"),
            ("run_id", "runs", "id"),
            ("sample_run_id", "runs", "id"),
        ],
    )
    db.table("verdict_samples").create_index(["run_id", "step"])
    db.table("runs").add_column("parent_run_id", str)
    db.table("runs").create_index(["parent_run_id"])


@migration
def m010_approvals(db: sqlite_utils.Database) -> None:
    """Approval decisions: tools withheld from the model, and each call allowed or denied.

    `decided_by` says what decided: `policy` (rules, defaults, nobody to ask), `allow` (an allow
    pattern), `trust` (a read-only claim from a trusted source) or `user`.
    """
    db.table("approvals").create(
        {
            "id": int,
            "run_id": str,
            "step": int,
            "tool_name": str,
            "outcome": str,
            "decided_by": str,
            "reason": str,
            "arguments": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("approvals").create_index(["run_id", "step"])
