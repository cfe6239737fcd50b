"""Schema migrations of the trace database, applied in order and recorded by name.

Each migration runs in one `BEGIN IMMEDIATE` transaction together with the row that records it,
so processes opening a new database at once apply it exactly once, and a process killed inside
one leaves nothing behind: the next open applies it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SEARCHED", "applied_migrations", "migrate"]

APPLICATION_ID = 0x56455254
"""`PRAGMA application_id` of a Verity trace database ("VERT"): how it is told apart from
other applications' SQLite files. Databases from before m005 have 0 and `_verity_migrations`."""

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[Migration] = []


def migration(function: Migration) -> Migration:
    """Register a migration; its function name is its permanent id."""
    MIGRATIONS.append(function)
    return function


def applied_migrations(conn: sqlite3.Connection) -> set[str]:
    """The names recorded in `_verity_migrations` (none in a new database)."""
    try:
        return {name for (name,) in conn.execute("select name from _verity_migrations")}
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return set()


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded; return the names this call applied.

    `conn` must be in autocommit mode (`isolation_level=None`): each migration is its own
    explicit transaction.
    """
    done = applied_migrations(conn)
    pending = [function for function in MIGRATIONS if function.__name__ not in done]
    if not pending:
        return []
    db = sqlite_utils.Database(conn)  # inside an open transaction its writes join it
    applied = []
    for function in pending:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "create table if not exists _verity_migrations "
                "(name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            # another process may have applied it while this one waited for the lock
            if function.__name__ not in applied_migrations(conn):
                conn.execute(f"pragma application_id = {APPLICATION_ID}")
                function(db)
                conn.execute(
                    "insert into _verity_migrations (name, applied_at) values (?, ?)",
                    [function.__name__, datetime.now(UTC).isoformat()],
                )
                applied.append(function.__name__)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
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
def m005_run_process(db: sqlite_utils.Database) -> None:
    """The process that records a run (pid, start time, host): a run whose process is gone is
    marked `interrupted` on the next open. Runs left `running` before this are marked so now."""
    for column in ("pid integer", "process text", "host text"):
        db.execute(f"alter table runs add column {column}")
    db.execute("create index idx_runs_status on runs (status)")
    db.execute(
        "update runs set status = 'interrupted', error = coalesce(error, ?) "
        "where status = 'running'",
        ["The run was left unfinished before Verity recorded its process."],
    )


@migration
def m006_run_config(db: sqlite_utils.Database) -> None:
    """How a run ran: model, sampling, GPU and run settings (JSON), versions, the model file's
    sha256, and its system prompt; long texts are stored once in `contents`, by sha256."""
    db.execute(
        "create table contents (hash TEXT PRIMARY KEY, kind TEXT NOT NULL, text TEXT NOT NULL)"
    )
    for column in (
        "config",
        "verity_version",
        "llama_cpp_version",
        "model_sha256",
        "system_prompt_hash",
    ):
        db.execute(f"alter table runs add column {column} text")


@migration
def m007_messages(db: sqlite_utils.Database) -> None:
    """What each model call was shown: messages stored once per conversation, in order, as each
    step adds them; a model call names its conversation, how many of its messages it saw, the
    tools offered (`contents` hash) and its purpose (the agent's turn, a verifier's check...)."""
    db.execute(
        """create table messages (
            id INTEGER PRIMARY KEY,
            run_id TEXT REFERENCES runs(id),
            conversation INTEGER,
            position INTEGER,
            step INTEGER,
            role TEXT,
            content TEXT,
            content_hash TEXT REFERENCES contents(hash),
            reasoning TEXT,
            tool_calls TEXT,
            tool_call_id TEXT,
            name TEXT
        )"""
    )
    db.execute("create index idx_messages_run_id on messages (run_id, conversation, position)")
    db.execute("alter table model_calls add column purpose TEXT NOT NULL DEFAULT 'agent'")
    for column in ("conversation integer", "messages_count integer", "tools_hash text"):
        db.execute(f"alter table model_calls add column {column}")
    db.execute("alter table steps add column tools_hash text")


SEARCHED = {
    "runs": ("task", "answer"),
    "model_calls": ("content", "reasoning"),
    "tool_calls": ("result",),
}
"""The full-text indexed columns of each table (FTS5 tables `<table>_fts`)."""


@migration
def m008_search(db: sqlite_utils.Database) -> None:
    """Full-text search (FTS5) over tasks, answers, model output and reasoning, and tool
    results; Datasette finds these indexes by their sqlite-utils names. A run's rows are
    indexed when it ends (in the transaction that closes it), not row by row: an index
    update per step would cost more than the step's whole record."""
    for table, columns in SEARCHED.items():
        db.table(table).enable_fts(list(columns), fts_version="FTS5", create_triggers=False)


@migration
def m009_views(db: sqlite_utils.Database) -> None:
    """Views for reading: one row per run with its tokens and tool errors, per-tool and
    per-model statistics."""
    db.execute(
        """create view run_summary as select
            r.id, r.started_at, r.status, r.model, r.task, r.answer, r.error, r.verified,
            r.verify_rounds, r.duration_s,
            (select count(*) from steps s where s.run_id = r.id) as steps,
            (select sum(m.input_tokens) from model_calls m where m.run_id = r.id) as input_tokens,
            (select sum(m.output_tokens) from model_calls m where m.run_id = r.id)
                as output_tokens,
            (select count(*) from model_calls m where m.run_id = r.id and m.purpose != 'agent')
                as helper_model_calls,
            (select count(*) from tool_calls t where t.run_id = r.id) as tool_calls,
            (select count(*) from tool_calls t where t.run_id = r.id and t.is_error)
                as tool_errors,
            r.parent_run_id
        from runs r"""
    )
    db.execute(
        """create view tool_stats as select tool_name, count(*) as calls,
            sum(is_error) as errors, round(avg(duration_s), 4) as mean_duration_s,
            max(duration_s) as max_duration_s
        from tool_calls group by tool_name"""
    )
    db.execute(
        """create view model_stats as select model, purpose, count(*) as calls,
            sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
            round(avg(output_tokens_per_s), 2) as mean_output_tokens_per_s,
            round(avg(duration_s), 3) as mean_duration_s
        from model_calls group by model, purpose"""
    )


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


@migration
def m011_tool_grammars(db: sqlite_utils.Database) -> None:
    """Offered tools whose call grammar is not exact: the level and the keywords it dropped."""
    db.table("tool_grammars").create(
        {
            "id": int,
            "run_id": str,
            "step": int,
            "tool_name": str,
            "level": str,
            "dropped": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("tool_grammars").create_index(["run_id", "step"])


@migration
def m012_verdict_conclusive(db: sqlite_utils.Database) -> None:
    """Whether an accepting verdict confirmed the answer (verified) or only found no problem.

    NULL for verdicts recorded before: then every accepting verdict counted as confirming."""
    db.table("verdicts").add_column("conclusive", int)


@migration
def m013_verdict_resume_from(db: sqlite_utils.Database) -> None:
    """For a rejected answer with a wrong calculation: the corrected beginning the model went on
    from (`Verdict.resume_from`); NULL otherwise, and for verdicts recorded before."""
    db.table("verdicts").add_column("resume_from", str)


TIMES = {
    "runs": ("started_at", "ended_at"),
    "steps": ("started_at", "ended_at"),
    "model_calls": ("created_at",),
    "tool_calls": ("created_at",),
    "verdicts": ("created_at",),
    "approvals": ("created_at",),
    "tool_grammars": ("created_at",),
}
"""The time columns of each table, stored as UTC `YYYY-MM-DD HH:MM:SS.SSS` since m014."""


@migration
def m014_sql_timestamps(db: sqlite_utils.Database) -> None:
    """Times as SQLite's date functions write them (`2026-12-06 23:08:43.022`, UTC) instead of
    ISO 8601 with an offset (`2026-12-06T23:08:43.022+00:00`), which compares wrongly as text
    with `datetime('now', '-1 hour')`: `T` sorts after the space, so every row of the day passed.
    SQLite's `strftime` reads the offset, so each converted time is the same instant in UTC."""
    for table, columns in TIMES.items():
        if not db.table(table).exists():  # a schema from before the table (m010, m011)
            continue
        for column in columns:
            db.execute(
                f"update {table} set {column} = strftime('%Y-%m-%d %H:%M:%f', {column}) "
                f"where {column} like '____-__-__T%'"
            )
