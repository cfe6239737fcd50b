"""Replaying a traced run: the loop again, fed the recorded model outputs and verdicts, with the
tools executed again; the first step where a tool result differs from the recorded one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from verity.errors import ModelError, RunError
from verity.loop import iter_run
from verity.messages import Finding, Message, ModelResponse, ToolCall, ToolStep, Verdict
from verity.models.base import ToolChoice
from verity.settings import RunSettings
from verity.tools.base import ToolSpec
from verity.tools.toolset import Toolset
from verity.verify import Candidate

__all__ = ["RecordedModel", "ReplayResult", "ToolDifference", "replay_run"]


@dataclass(frozen=True)
class ToolDifference:
    """A tool call whose result in the replay is not the recorded one."""

    step: int
    tool_name: str
    arguments: dict[str, Any]
    recorded: str | None
    """The recorded result; None when the original run made no such call."""
    replayed: str
    recorded_error: bool
    replayed_error: bool


@dataclass(frozen=True)
class ReplayResult:
    """How a replay went."""

    run_id: str
    compared: int
    """Tool calls whose results were compared before the replay ended or diverged."""
    difference: ToolDifference | None
    """The first differing tool result; None when every result matched."""
    ended: str
    """How the replayed loop ended: "answer", "diverged", or the error that ended it."""


class RecordedModel:
    """Answers with the recorded model outputs, in order."""

    def __init__(self, name: str, responses: list[ModelResponse]) -> None:
        self.name = name
        self._responses = iter(responses)

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        try:
            return next(self._responses)
        except StopIteration:
            raise ModelError("The replay asked for more model calls than were recorded.") from None


class _RecordedVerifier:
    """Gives the recorded verdicts on answers, in order."""

    def __init__(self, verdicts: list[Verdict]) -> None:
        self._verdicts = iter(verdicts)

    async def verify(self, candidate: Candidate) -> Verdict:
        return next(self._verdicts, Verdict(ok=True, verifier="none", checked=False))


def _response(call: dict[str, Any]) -> ModelResponse:
    return ModelResponse(
        content=call["content"] or "",
        reasoning=call["reasoning"],
        tool_calls=[ToolCall(**c) for c in json.loads(call["tool_calls"] or "[]")],
        invalid_calls=json.loads(call["invalid_calls"] or "[]"),
        raw=call["raw"] or "",
        finish_reason=call["finish_reason"] or "stop",
        model=call["model"] or "",
    )


def _verdict(row: dict[str, Any]) -> Verdict:
    findings = [Finding(**f) for f in json.loads(row["findings"] or "[]")]
    return Verdict(
        ok=bool(row["ok"]),
        verifier=row["verifier"] or "",
        findings=findings,
        feedback=row["feedback"] or "",
        confidence=row["confidence"],
        checked=bool(row["checked"]),
        conclusive=row.get("conclusive") != 0,  # NULL: recorded before m012
        resume_from=row.get("resume_from"),
    )


async def replay_run(record: dict[str, Any], toolsets: Sequence[Toolset]) -> ReplayResult:
    """Replay a run as `TraceStore.run` returns it, with these toolsets (not yet entered)."""
    agent_calls = [c for c in record["model_calls"] if c.get("purpose", "agent") == "agent"]
    model = RecordedModel(record["model"] or "replay", [_response(c) for c in agent_calls])
    answer_verdicts = [v for v in record["verdicts"] if (v["scope"] or "answer") == "answer"]
    verifier = _RecordedVerifier([_verdict(v) for v in answer_verdicts])
    recorded = {(t["step"], t["tool_call_id"]): t for t in record["tool_calls"]}
    config = json.loads(record.get("config") or "{}")
    settings = RunSettings.model_validate(config.get("run") or {})
    # the recorded verdicts hold the answer checks' own: they are replayed, not run again
    steps = max(len(agent_calls), 1)
    settings = settings.model_copy(update={"max_steps": steps, "check_answers": False})
    compared = 0
    async with AsyncExitStack() as stack:
        for toolset in toolsets:
            await stack.enter_async_context(toolset)
        try:
            async for step in iter_run(
                record["task"], model=model, toolsets=toolsets, verifier=verifier, settings=settings
            ):
                if not isinstance(step, ToolStep):
                    continue
                for call, result in zip(step.calls, step.results, strict=True):
                    then = recorded.get((step.step, call.id))
                    if then is None or (then["result"], bool(then["is_error"])) != (
                        result.content,
                        result.is_error,
                    ):
                        difference = ToolDifference(
                            step=step.step,
                            tool_name=call.name,
                            arguments=call.arguments,
                            recorded=then["result"] if then else None,
                            replayed=result.content,
                            recorded_error=bool(then and then["is_error"]),
                            replayed_error=result.is_error,
                        )
                        return ReplayResult(record["id"], compared, difference, "diverged")
                    compared += 1
        except (RunError, ModelError) as exc:
            return ReplayResult(record["id"], compared, None, f"{type(exc).__name__}: {exc}")
    return ReplayResult(record["id"], compared, None, "answer")
