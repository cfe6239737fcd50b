"""A finished run's conversation read back from the trace: the history that continues it."""

from __future__ import annotations

import json

from verity.errors import UserError
from verity.messages import Message, ToolCall
from verity.trace.store import TraceStore

__all__ = ["CONTINUES_LABEL", "CONVERSATION_LABEL", "conversation_of", "conversation_start"]

CONVERSATION_LABEL = "conversation"
"""The run label holding the id of a conversation's first run (`RunSettings.labels`)."""
CONTINUES_LABEL = "continues"
"""The run label holding the id of the run a turn continues."""


def conversation_of(store: TraceStore, run_id: str) -> list[Message]:
    """The agent's conversation of run `run_id` as its last model call saw it, ending with the
    run's answer (system prompt left out: the next run brings its own).

    Raises:
        UserError: the run is unknown or ended without an answer.
    """
    found = store.read("select status, answer from runs where id = ?", [run_id])
    if not found:
        raise UserError(f"No run {run_id!r} in {store.path}.", field="run_id")
    run = found[0]
    if run["status"] != "completed" or run["answer"] is None:
        raise UserError(
            f"Run {run_id} ended {run['status']} without an answer: continue one that answered "
            "(verity logs --status completed).",
            field="run_id",
        )
    rows = store.read(
        "select role, content, content_hash, reasoning, tool_calls, tool_call_id, name "
        "from messages where run_id = ? and role != 'system' and conversation = ("
        "select conversation from model_calls where run_id = ? and purpose = 'agent' "
        "order by id desc limit 1) order by position",
        [run_id, run_id],
    )
    messages = [
        Message(
            role=row["role"],
            content=row["content"]
            if row["content"] is not None
            else store.content(row["content_hash"]) or "",
            reasoning=row["reasoning"],
            tool_calls=[ToolCall(**call) for call in json.loads(row["tool_calls"] or "[]")],
            tool_call_id=row["tool_call_id"],
            name=row["name"],
        )
        for row in rows
    ]
    messages.append(Message(role="assistant", content=run["answer"]))
    return messages


def conversation_start(store: TraceStore, run_id: str) -> str:
    """The id of the first run of the conversation `run_id` belongs to (itself when it began
    one)."""
    rows = store.read(
        "select json_extract(config, '$.run.labels.' || ?) as first from runs where id = ?",
        [CONVERSATION_LABEL, run_id],
    )
    return str(rows[0]["first"]) if rows and rows[0]["first"] else run_id
