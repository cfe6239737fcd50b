"""The Verifier protocol, what it is given, and the pass-through default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from verity.messages import Message, ModelResponse, ToolCall, Verdict
from verity.tools.base import ToolResult

__all__ = ["AcceptAll", "Candidate", "Verifier", "VerifyRounds", "candidate_of"]


@dataclass(frozen=True)
class Candidate:
    """Everything a verifier may look at: the task, the reasoning, the evidence, the answer."""

    task: str
    answer: str
    reasoning: list[str] = field(default_factory=list)
    """The model's reasoning (`<think>` text) over the run, oldest first."""
    evidence: list[tuple[ToolCall, ToolResult]] = field(default_factory=list)
    """Every tool call the run made, with its result, in order."""
    messages: list[Message] = field(default_factory=list)


class Verifier(Protocol):
    """Judges a candidate answer; returns a rejected verdict rather than raising."""

    async def verify(self, candidate: Candidate) -> Verdict:
        """Check the candidate and say why it is or is not acceptable."""
        ...


class AcceptAll:
    """No verification: every answer is accepted and recorded as unverified."""

    async def verify(self, candidate: Candidate) -> Verdict:
        """Accept without checking."""
        return Verdict(ok=True, verifier="none", checked=False)


def candidate_of(
    task: str,
    response: ModelResponse,
    messages: list[Message],
    evidence: list[tuple[ToolCall, ToolResult]],
) -> Candidate:
    """The candidate a run has reached: its answer with the reasoning and evidence behind it."""
    reasoning = [m.reasoning for m in messages if m.reasoning]
    return Candidate(task, response.content, reasoning, list(evidence), list(messages))


class VerifyRounds:
    """Counts verified candidates and keeps the best one, for when the rounds run out.

    The best is the candidate whose verdict had the highest confidence (the latest on a tie,
    or when no verdict gave a confidence).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.checked = 0
        """Candidates a verifier really checked (none when verification is off)."""
        self.best: str | None = None
        self._best_confidence = -1.0
        self._accepted = False

    @property
    def verified(self) -> bool | None:
        """Whether the answer that ended the run passed a check; None when nothing was checked."""
        return self._accepted if self.checked else None

    def settle(self, answer: str, verdict: Verdict) -> str | None:
        """The run's final answer once `verdict` ends it (accepted or out of rounds), else None."""
        self.count += 1
        self.checked += verdict.checked
        confidence = verdict.confidence if verdict.confidence is not None else 0.0
        if confidence >= self._best_confidence:
            self.best, self._best_confidence = answer, confidence
        if verdict.ok:
            self._accepted = verdict.checked
            return answer
        return self.best if self.count >= self.limit else None
