"""Hooks: how tracing and progress reporting listen to a run without the loop knowing them.

Each hook method receives one event, a frozen dataclass naming what happened. A new field
can be added to an event without breaking a hook written against the old one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from verity.messages import Message, ModelResponse, ToolCall, Verdict
from verity.tools.approval import ApprovalDecision
from verity.tools.base import ToolResult, ToolSpec

__all__ = [
    "ApprovalDecided",
    "CompositeHooks",
    "ModelCallEnded",
    "ModelCallStarted",
    "ModelPurpose",
    "RunEnded",
    "RunHooks",
    "RunStarted",
    "RunStatus",
    "ToolCallEnded",
    "ToolCallStarted",
    "VerdictReached",
]

RunStatus = Literal["completed", "failed", "limit_exceeded", "cancelled"]

ModelPurpose = Literal["agent", "verifier", "relevance", "consensus"]
"""Why a model call was made: the agent's own turn, or a call on its behalf (a verifier
judging an answer, a relevance gate, a consensus attempt). The trace keeps it per call."""


@dataclass(frozen=True, kw_only=True)
class RunStarted:
    """A run began."""

    run_id: str
    task: str
    model: str
    """The model's name."""
    config: Mapping[str, Any] | None = None
    """How it runs: the model (backend, file, sampling and GPU settings) and the run
    settings, as JSON-ready data."""


@dataclass(frozen=True, kw_only=True)
class ModelCallStarted:
    """The model is about to be called with `messages` and the offered `tools`."""

    run_id: str
    step: int
    messages: list[Message]
    tools: Sequence[ToolSpec] = ()
    purpose: ModelPurpose = "agent"
    """A call made for something other than the agent's own turn (a verifier's judgement)
    says so here, and its `ModelCallEnded` the same."""


@dataclass(frozen=True, kw_only=True)
class ModelCallEnded:
    """The model answered."""

    run_id: str
    step: int
    response: ModelResponse
    purpose: ModelPurpose = "agent"


@dataclass(frozen=True, kw_only=True)
class ToolCallStarted:
    """A tool call is about to run."""

    run_id: str
    step: int
    call: ToolCall


@dataclass(frozen=True, kw_only=True)
class ToolCallEnded:
    """A tool call finished (successfully or as an error result)."""

    run_id: str
    step: int
    call: ToolCall
    result: ToolResult
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class VerdictReached:
    """A verifier judged a candidate answer (or the arguments of a turn's tool calls)."""

    run_id: str
    step: int
    verdict: Verdict


@dataclass(frozen=True, kw_only=True)
class ApprovalDecided:
    """An approval gate withheld a tool while listing, or allowed or denied one call.

    Withheld tools are reported at every listing (each step); record them once.
    """

    run_id: str
    step: int
    decision: ApprovalDecision


@dataclass(frozen=True, kw_only=True)
class RunEnded:
    """The run ended."""

    run_id: str
    status: RunStatus
    answer: str | None = None
    error: str | None = None
    verified: bool | None = None
    """Whether its answer passed verification: None when no verifier checked an answer
    (verification off, or no answer reached it)."""
    verify_rounds: int = 0
    """How many answers a verifier checked."""


class RunHooks:
    """No-op callbacks for the events of a run; subclass and override what you need."""

    async def on_run_start(self, event: RunStarted) -> None:
        """A run began."""

    async def on_model_start(self, event: ModelCallStarted) -> None:
        """The model is about to be called."""

    async def on_model_end(self, event: ModelCallEnded) -> None:
        """The model answered."""

    async def on_tool_start(self, event: ToolCallStarted) -> None:
        """A tool call is about to run."""

    async def on_tool_end(self, event: ToolCallEnded) -> None:
        """A tool call finished (successfully or as an error result)."""

    async def on_verdict(self, event: VerdictReached) -> None:
        """A verifier judged a candidate answer."""

    async def on_approval(self, event: ApprovalDecided) -> None:
        """An approval gate withheld a tool, or allowed or denied one call."""

    async def on_run_end(self, event: RunEnded) -> None:
        """The run ended."""


class CompositeHooks(RunHooks):
    """Several hooks, each told of every event in order."""

    def __init__(self, hooks: Sequence[RunHooks]) -> None:
        self._hooks = list(hooks)

    async def on_run_start(self, event: RunStarted) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_run_start(event)

    async def on_model_start(self, event: ModelCallStarted) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_model_start(event)

    async def on_model_end(self, event: ModelCallEnded) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_model_end(event)

    async def on_tool_start(self, event: ToolCallStarted) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_tool_start(event)

    async def on_tool_end(self, event: ToolCallEnded) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_tool_end(event)

    async def on_verdict(self, event: VerdictReached) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_verdict(event)

    async def on_approval(self, event: ApprovalDecided) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_approval(event)

    async def on_run_end(self, event: RunEnded) -> None:
        """Forward to every hook."""
        for hook in self._hooks:
            await hook.on_run_end(event)
