"""Hooks: how tracing and progress reporting listen to a run without the loop knowing them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from verity.messages import Message, ModelResponse, ToolCall, Verdict
from verity.tools.approval import ApprovalDecision
from verity.tools.base import ToolResult, ToolSpec

__all__ = ["CompositeHooks", "ModelPurpose", "RunHooks", "RunStatus"]

RunStatus = Literal["completed", "failed", "limit_exceeded", "cancelled"]

ModelPurpose = Literal["agent", "verifier", "relevance", "consensus"]
"""Why a model call was made: the agent's own turn, or a call on its behalf (a verifier
judging an answer, a relevance gate, a consensus attempt). The trace keeps it per call."""


class RunHooks:
    """No-op callbacks for the events of a run; subclass and override what you need."""

    async def on_run_start(
        self, run_id: str, task: str, model: str, *, config: Mapping[str, Any] | None = None
    ) -> None:
        """A run began.

        `config` describes how it runs: the model (backend, file, sampling and GPU settings)
        and the run settings, as JSON-ready data.
        """

    async def on_model_start(
        self,
        run_id: str,
        step: int,
        messages: list[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        purpose: ModelPurpose = "agent",
    ) -> None:
        """The model is about to be called with `messages` and the offered `tools`.

        A call made for something other than the agent's own turn (a verifier's judgement)
        passes its `purpose`, and the matching `on_model_end` the same.
        """

    async def on_model_end(
        self, run_id: str, step: int, response: ModelResponse, *, purpose: ModelPurpose = "agent"
    ) -> None:
        """The model answered."""

    async def on_tool_start(self, run_id: str, step: int, call: ToolCall) -> None:
        """A tool call is about to run."""

    async def on_tool_end(
        self, run_id: str, step: int, call: ToolCall, result: ToolResult, duration_s: float
    ) -> None:
        """A tool call finished (successfully or as an error result)."""

    async def on_verdict(self, run_id: str, step: int, verdict: Verdict) -> None:
        """A verifier judged a candidate answer."""

    async def on_approval(self, run_id: str, step: int, decision: ApprovalDecision) -> None:
        """An approval gate withheld a tool while listing, or allowed or denied one call.

        Withheld tools are reported at every listing (each step); record them once.
        """

    async def on_run_end(
        self,
        run_id: str,
        status: RunStatus,
        answer: str | None,
        error: str | None,
        *,
        verified: bool | None = None,
        verify_rounds: int = 0,
    ) -> None:
        """The run ended.

        `verified` says whether its answer passed verification: None when no verifier checked an
        answer (verification off, or no answer reached it). `verify_rounds` counts the answers
        a verifier checked.
        """


class CompositeHooks(RunHooks):
    """Several hooks called in order."""

    def __init__(self, hooks: Sequence[RunHooks]) -> None:
        self._hooks = list(hooks)

    async def on_run_start(
        self, run_id: str, task: str, model: str, *, config: Mapping[str, Any] | None = None
    ) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_run_start(run_id, task, model, config=config)

    async def on_model_start(
        self,
        run_id: str,
        step: int,
        messages: list[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        purpose: ModelPurpose = "agent",
    ) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_model_start(run_id, step, messages, tools=tools, purpose=purpose)

    async def on_model_end(
        self, run_id: str, step: int, response: ModelResponse, *, purpose: ModelPurpose = "agent"
    ) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_model_end(run_id, step, response, purpose=purpose)

    async def on_tool_start(self, run_id: str, step: int, call: ToolCall) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_tool_start(run_id, step, call)

    async def on_tool_end(
        self, run_id: str, step: int, call: ToolCall, result: ToolResult, duration_s: float
    ) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_tool_end(run_id, step, call, result, duration_s)

    async def on_verdict(self, run_id: str, step: int, verdict: Verdict) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_verdict(run_id, step, verdict)

    async def on_approval(self, run_id: str, step: int, decision: ApprovalDecision) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_approval(run_id, step, decision)

    async def on_run_end(
        self,
        run_id: str,
        status: RunStatus,
        answer: str | None,
        error: str | None,
        *,
        verified: bool | None = None,
        verify_rounds: int = 0,
    ) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_run_end(
                run_id, status, answer, error, verified=verified, verify_rounds=verify_rounds
            )
