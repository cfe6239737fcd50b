"""Runs out of the trace database: JSON lines, or OTLP JSON spans named per the OpenTelemetry
GenAI semantic conventions (an `invoke_agent` span per run, `chat` per model call,
`execute_tool` per tool call), which an OpenTelemetry collector's OTLP receiver loads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from verity.trace.store import parse_timestamp

__all__ = ["otlp_json", "otlp_json_text", "span_id", "trace_id"]

_INTERNAL, _CLIENT = 1, 3
_STATUS_ERROR = 2


def trace_id(run_id: str) -> str:
    """The run's OTLP trace id: 32 hex digits derived from the run id (stable across exports)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]


def span_id(run_id: str, *parts: object) -> str:
    """A span id: 16 hex digits derived from the run id and the span's place in it."""
    return hashlib.sha256(repr((run_id, *parts)).encode()).hexdigest()[:16]


def _nanos(stamp: str | None) -> int:
    return int(parse_timestamp(stamp).timestamp() * 1e9) if stamp else 0


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in OTLP JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attributes(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in pairs.items() if v is not None]


def _span(
    run_id: str,
    name: str,
    ids: tuple[str, str | None],
    times: tuple[int, int],
    attributes: dict[str, Any],
    *,
    kind: int = _INTERNAL,
    error: str | None = None,
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": trace_id(run_id),
        "spanId": ids[0],
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(times[0]),
        "endTimeUnixNano": str(max(times)),
        "attributes": _attributes(attributes),
    }
    if ids[1] is not None:
        span["parentSpanId"] = ids[1]
    if error is not None:
        span["status"] = {"code": _STATUS_ERROR, "message": error}
    return span


def _spans(run: dict[str, Any]) -> list[dict[str, Any]]:
    run_id = run["id"]
    config = run.get("config") or {}
    model = config.get("model") or {}
    settings = model.get("settings") or model.get("sampling") or {}
    root = span_id(run_id, "run")
    end = _nanos(run["ended_at"]) or max(
        [_nanos(c["created_at"]) for c in run["model_calls"] + run["tool_calls"]], default=0
    )
    failed = run["status"] not in ("completed", "running")
    spans = [
        _span(
            run_id,
            "invoke_agent verity",
            (root, None),
            (_nanos(run["started_at"]), end),
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "verity",
                "gen_ai.conversation.id": run_id,
                "gen_ai.request.model": run["model"],
                "verity.run.status": run["status"],
                "verity.run.verified": run.get("verified"),
                "verity.model.sha256": run.get("model_sha256"),
            },
            error=run["error"] if failed else None,
        )
    ]
    for call in run["model_calls"]:
        ended = _nanos(call["created_at"])
        started = ended - int((call["duration_s"] or 0) * 1e9)
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": model.get("backend", "verity"),
            "gen_ai.request.model": run["model"],
            "gen_ai.response.model": call["model"],
            "gen_ai.request.temperature": settings.get("temperature"),
            "gen_ai.request.top_p": settings.get("top_p"),
            "gen_ai.request.max_tokens": settings.get("max_tokens"),
            "gen_ai.request.seed": settings.get("seed"),
            "gen_ai.response.finish_reasons": [call["finish_reason"]],
            "gen_ai.usage.input_tokens": call["input_tokens"],
            "gen_ai.usage.output_tokens": call["output_tokens"],
            "verity.purpose": call.get("purpose", "agent"),
            "verity.step": call["step"],
        }
        ids = (span_id(run_id, "chat", call["id"]), root)
        spans.append(
            _span(
                run_id,
                f"chat {call['model'] or run['model']}",
                ids,
                (started, ended),
                attributes,
                kind=_CLIENT,
            )
        )
    for tool in run["tool_calls"]:
        ended = _nanos(tool["created_at"])
        started = ended - int((tool["duration_s"] or 0) * 1e9)
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool["tool_name"],
            "gen_ai.tool.call.id": tool["tool_call_id"],
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.arguments": json.dumps(tool["arguments"]),
            "gen_ai.tool.call.result": tool["result"],
            "verity.step": tool["step"],
        }
        ids = (span_id(run_id, "tool", tool["id"]), root)
        error = tool["result"] if tool["is_error"] else None
        spans.append(
            _span(
                run_id,
                f"execute_tool {tool['tool_name']}",
                ids,
                (started, ended),
                attributes,
                error=error,
            )
        )
    return spans


def otlp_json(runs: list[dict[str, Any]], *, version: str | None = None) -> dict[str, Any]:
    """An OTLP `ExportTraceServiceRequest` in JSON for runs as `query.full_run` gives them."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes({"service.name": "verity"})},
                "scopeSpans": [
                    {
                        "scope": {"name": "verity.trace", "version": version or ""},
                        "spans": [span for run in runs for span in _spans(run)],
                    }
                ],
            }
        ]
    }


def otlp_json_text(runs: Iterable[dict[str, Any]], *, version: str | None = None) -> Iterator[str]:
    """`otlp_json` as JSON text, in pieces: one run's spans at a time, so exporting every run
    of a large database holds one run in memory, not all of them."""
    head = json.dumps(otlp_json([], version=version))
    before, after = head.split('"spans": []')
    yield before + '"spans": ['
    first = True
    for run in runs:
        for span in _spans(run):
            yield ("" if first else ", ") + json.dumps(span)
            first = False
    yield "]" + after
