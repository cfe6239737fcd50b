"""Datasette metadata for a trace database: what each table holds, and canned queries."""

from __future__ import annotations

from typing import Any

__all__ = ["datasette_metadata"]

TABLES = {
    "runs": "One row per run: task, model, status (running, completed, failed, limit_exceeded, "
    "cancelled, interrupted), answer or error, verification, settings (config JSON), versions, "
    "the model file's sha256, and the recording process.",
    "steps": "One row per loop step of a run: when it started and ended, how it ended "
    "(tool_calls, answer, accepted, rejected, invalid_calls), the tools offered (tools_hash).",
    "messages": "What the model was shown, stored once per conversation as each step adds to "
    "it; a model call saw the first messages_count messages of its conversation. Long texts "
    "(the system prompt) are in contents, by content_hash.",
    "model_calls": "One row per model call: purpose (agent, verifier, relevance, consensus), "
    "tokens (NULL when the backend reported none), text, reasoning, tool calls, timings.",
    "tool_calls": "One row per tool call: arguments, result, whether it failed, duration.",
    "verdicts": "A verifier's judgement of an answer (scope answer) or of a step's tool "
    "arguments (scope tool_calls), with its findings.",
    "verdict_samples": "The independent attempts a consensus verdict compared.",
    "approvals": "Approval decisions: tools withheld from the model (once per run), and each "
    "call allowed or denied, with what decided (policy, allow, trust, user) and why.",
    "contents": "Texts stored once by sha256: system prompts and offered tool lists (JSON).",
    "run_summary": "One row per run with its steps, tokens, helper model calls, tool calls "
    "and tool errors.",
    "tool_stats": "Per tool: calls, errors, mean and max duration.",
    "model_stats": "Per model and purpose: calls, tokens, mean speed and duration.",
}

QUERIES = {
    "failed_runs": {
        "title": "Runs that ended without an answer",
        "sql": "select id, started_at, status, model, task, error from runs "
        "where status not in ('completed', 'running') order by started_at desc limit 100",
    },
    "tool_errors": {
        "title": "Tool calls that failed, newest first",
        "sql": "select run_id, step, tool_name, arguments, result, created_at from tool_calls "
        "where is_error = 1 order by id desc limit 100",
    },
    "unverified_answers": {
        "title": "Answers a verifier checked and did not confirm (not verified)",
        "sql": "select id, started_at, model, task, answer, verify_rounds from runs "
        "where status = 'completed' and verified = 0 order by started_at desc limit 100",
    },
    "unchecked_answers": {
        "title": "Answers no verifier checked (not checked)",
        "sql": "select id, started_at, model, task, answer from runs "
        "where status = 'completed' and verified is null order by started_at desc limit 100",
    },
    "last_hour": {
        "title": "Runs started in the last hour (times are UTC)",
        "sql": "select id, started_at, status, model, task, answer from runs "
        "where started_at > datetime('now', '-1 hour') order by started_at desc",
    },
    "run_messages": {
        "title": "What the model was shown in a run",
        "sql": "select m.conversation, m.position, m.step, m.role, "
        "coalesce(m.content, c.text) as content, m.tool_calls from messages m "
        "left join contents c on c.hash = m.content_hash where m.run_id = :run_id "
        "order by m.conversation, m.position",
    },
    "slowest_model_calls": {
        "title": "Slowest model calls",
        "sql": "select run_id, step, purpose, model, input_tokens, output_tokens, duration_s, "
        "output_tokens_per_s from model_calls order by duration_s desc limit 50",
    },
}


def datasette_metadata(database: str = "traces") -> dict[str, Any]:
    """Metadata for `datasette DB --metadata FILE`; `database` is the file name without .db."""
    return {
        "title": "Verity traces",
        "description": "Runs of a Verity agent: what the model was shown and said, the tools it "
        "called, and how its answers were verified.",
        "databases": {
            database: {
                "tables": {name: {"description": text} for name, text in TABLES.items()},
                "queries": QUERIES,
            }
        },
    }
