"""Reading traces back: runs filtered and searched, and one run in full."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from verity.errors import UserError
from verity.trace.store import TIMESTAMP_FORMAT, TraceStore

__all__ = ["RunFilter", "find_runs", "full_run", "parse_since", "resolve_run_id"]

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_JSON_COLUMNS = {"config", "tool_calls", "invalid_calls", "arguments", "findings"}


@dataclass(frozen=True)
class RunFilter:
    """Which runs `find_runs` returns; every field that is set must hold."""

    status: str | None = None
    model: str | None = None
    """A part of the model's name (case-insensitive)."""
    tool: str | None = None
    """The run called this tool at least once."""
    verified: Literal["yes", "no", "unchecked"] | None = None
    """yes: a verifier confirmed the answer; no: a verifier ran and did not confirm it;
    unchecked: no verifier checked it."""
    since: str | None = None
    """Started at or after this UTC time (as stored: `parse_since` gives it)."""
    query: str | None = None
    """Words that must all appear in the task, answer, model output, reasoning or a tool
    result of a finished run (full-text search)."""
    samples: bool = False
    """Include consensus attempts' own runs."""


def parse_since(text: str, *, now: datetime | None = None) -> str:
    """A UTC time as the trace stores it, from `2026-11-28`, `2026-11-28T17:30`, or an age:
    `30m`, `2h`, `7d`.

    Raises:
        UserError: the text is neither a date nor an age.
    """
    now = now or datetime.now(UTC)
    if match := _RELATIVE.match(text.strip()):
        amount, unit = match.groups()
        return _stored(now - timedelta(**{_UNITS[unit]: int(amount)}))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"--since {text!r} is neither a date (2026-11-28, 2026-11-28T17:30) nor an age "
            "(30m, 2h, 7d).",
            field="since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _stored(moment)


def _stored(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)[:-3]


def _match_expression(words: str) -> str:
    """User words as an FTS5 query: each a quoted term, all required (no FTS syntax errors)."""
    terms = [w.replace('"', '""') for w in words.split()]
    return " ".join(f'"{t}"' for t in terms)


def find_runs(store: TraceStore, where: RunFilter, *, limit: int = 20) -> list[dict[str, Any]]:
    """Runs from `run_summary` that pass the filter, newest first."""
    clauses: list[str] = []
    values: list[Any] = []
    if not where.samples:
        clauses.append("s.parent_run_id is null")
    if where.status:
        clauses.append("s.status = ?")
        values.append(where.status)
    if where.model:
        clauses.append("s.model like ?")
        values.append(f"%{where.model}%")
    if where.tool:
        clauses.append(
            "exists (select 1 from tool_calls t where t.run_id = s.id and t.tool_name = ?)"
        )
        values.append(where.tool)
    if where.verified:
        clauses.append(
            {"yes": "s.verified = 1", "no": "s.verified = 0", "unchecked": "s.verified is null"}[
                where.verified
            ]
        )
    if where.since:
        clauses.append("s.started_at >= ?")
        values.append(where.since)
    if where.query and where.query.strip():
        clauses.append(
            "s.id in (select r.id from runs_fts f join runs r on r.rowid = f.rowid "
            "where runs_fts match :q union select m.run_id from model_calls_fts f "
            "join model_calls m on m.rowid = f.rowid where model_calls_fts match :q "
            "union select t.run_id from tool_calls_fts f join tool_calls t on t.rowid = f.rowid "
            "where tool_calls_fts match :q)".replace(":q", "?")
        )
        values.extend([_match_expression(where.query)] * 3)
    condition = f"where {' and '.join(clauses)}" if clauses else ""
    # runs started in the same millisecond keep the order they were inserted in
    sql = (
        f"select s.* from run_summary s join runs r on r.id = s.id {condition} "
        "order by r.started_at desc, r.rowid desc limit ?"
    )
    return store.read(sql, [*values, limit])


def resolve_run_id(store: TraceStore, given: str) -> str:
    """The id of the run `given` names: a whole id, `last` (the newest run, consensus samples
    aside), the start of an id (`20261206-2308`) or its random end (`4f9a2c`).

    Raises:
        UserError: no run, or more than one, matches.
    """
    given = given.strip()
    if given == "last":
        rows = store.read(
            "select id from runs where parent_run_id is null "
            "order by started_at desc, rowid desc limit 1"
        )
        if not rows:
            raise UserError(f"There are no runs in {store.path} yet.", field="run_id")
        return str(rows[0]["id"])
    if not given:
        raise UserError("Name a run: an id from `verity logs`, or last.", field="run_id")
    rows = store.read(
        "select id from runs where id = ? or substr(id, 1, length(?)) = ? "
        "or substr(id, -length(?) - 1) = '-' || ? order by started_at desc, rowid desc limit 6",
        [given, given, given, given, given],
    )
    ids = [str(row["id"]) for row in rows]
    if given in ids or len(ids) == 1:
        return given if given in ids else ids[0]
    if not ids:
        raise UserError(
            f"No run {given!r} in {store.path}. List runs with `verity logs`.", field="run_id"
        )
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    raise UserError(
        f"{given!r} matches several runs ({shown}); give more of the id.", field="run_id"
    )


def full_run(store: TraceStore, run_id: str) -> dict[str, Any] | None:
    """One run with everything recorded about it, JSON columns decoded, the system prompt and
    each offered tool list resolved from `contents`. None if the run is unknown."""
    record = store.run(run_id)
    if record is None:
        return None
    record["system_prompt"] = store.content(record.get("system_prompt_hash"))
    tools = {}
    for call in record["model_calls"]:
        digest = call.get("tools_hash")
        if digest and digest not in tools:
            tools[digest] = json.loads(store.content(digest) or "null")
    record["tools"] = tools
    for message in record["messages"]:
        if message["content"] is None and message["content_hash"]:
            message["content"] = store.content(message["content_hash"])
    decoded: dict[str, Any] = _decoded(record)
    return decoded


def _decoded(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: json.loads(v) if k in _JSON_COLUMNS and isinstance(v, str) else _decoded(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value
