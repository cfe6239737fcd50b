"""Verification of candidate answers before a run accepts them (design D6).

This module holds the protocol the loop calls and the pass-through default. The built-in
verifiers (self-check, consensus, programmatic) are tracked in their own issue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent.messages import Message, ToolCall, Verdict
from tools.base import ToolResult

__all__ = ["AcceptAll", "Candidate", "Verifier"]


@dataclass(frozen=True)
class Candidate:
    """Everything a verifier may look at: the task, the reasoning, the evidence, the answer."""

    task: str
    answer: str
    reasoning: list[str] = field(default_factory=list)
    evidence: list[tuple[ToolCall, ToolResult]] = field(default_factory=list)
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
