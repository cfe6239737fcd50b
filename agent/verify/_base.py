"""The Verifier protocol, what it is given, and the pass-through default."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from verity.hooks import ModelCallEnded, ModelCallStarted, ModelPurpose, RunHooks
from verity.messages import (
    AnswerStatus,
    FinalStep,
    Finding,
    Message,
    ModelResponse,
    ToolCall,
    Usage,
    Verdict,
)
from verity.models.base import Model, ToolChoice
from verity.tools.base import ToolResult, ToolSpec

__all__ = [
    "VERIFIER_PURPOSE",
    "AcceptAll",
    "Candidate",
    "Verifier",
    "VerifierCalls",
    "VerifyRounds",
    "candidate_of",
    "repair_feedback",
    "why_not_accepted",
]

VERIFIER_PURPOSE: ModelPurpose = "verifier"
"""What a verifier's model calls are for, as the trace records it (`model_calls.purpose`)."""


REPAIR_INSTRUCTION = (
    "Check each step of your solution against this, redo any wrong step with the calculator, "
    "and give your final answer."
)


def repair_feedback(findings: list[Finding], *, extra: list[str] | None = None) -> str:
    """Feedback for the model: each failed finding on a line of its own, then what to do."""
    lines = ["Verification did not confirm your answer:"]
    lines += [f"- {f.claim}: {f.evidence}" for f in findings if not f.ok]
    lines += [f"- {line}" for line in extra or []]
    lines.append(REPAIR_INSTRUCTION)
    return "\n".join(lines)


class VerifierCalls:
    """A verifier's model calls for one candidate: each traced as a model call of the run, and
    counted, so that the verdict's tokens show in the trace and in `RunResult.usage`.

    Args:
        hooks: The run's hooks (the trace recorder among them); None records nothing.
        run_id: The run being verified.
        step: The step whose answer is verified; the verifier's calls are recorded under it.
    """

    def __init__(self, hooks: RunHooks | None = None, *, run_id: str = "", step: int = 0) -> None:
        self.hooks = hooks or RunHooks()
        self.run_id = run_id
        self.step = step
        self.purpose: ModelPurpose = VERIFIER_PURPOSE
        self.usage = Usage()
        """Tokens of every call so far, and of work counted with `count`."""

    async def respond(
        self,
        model: Model,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        tool_choice: ToolChoice = "auto",
    ) -> ModelResponse:
        """Call `model` as the verifier, through the run's hooks.

        Raises:
            ModelError: the model backend failed.
        """
        # recorded under the step whose answer is judged, marked as the verifier's
        await self.hooks.on_model_start(
            ModelCallStarted(
                run_id=self.run_id,
                step=self.step,
                messages=messages,
                tools=tools,
                purpose=self.purpose,
            )
        )
        response = await model.respond(messages, tools, tool_choice=tool_choice)
        self.usage += response.usage
        await self.hooks.on_model_end(
            ModelCallEnded(
                run_id=self.run_id, step=self.step, response=response, purpose=self.purpose
            )
        )
        return response

    def count(self, usage: Usage) -> None:
        """Count tokens the verifier spent outside `respond` (consensus attempts traced as runs
        of their own)."""
        self.usage += usage


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
    calls: VerifierCalls = field(default_factory=VerifierCalls)
    """How a verifier calls a model for this candidate: traced and counted."""
    tools: list[ToolSpec] = field(default_factory=list)
    """The tools the run offered the model for this answer."""

    def working(self) -> str:
        """What the model wrote for this answer: the reasoning and text of its turns since the
        last user message (the task, or feedback on an earlier answer, whose text must not
        count for this one) and the answer itself. Tool calls are in `evidence`."""
        if not self.messages:
            return "\n".join([*self.reasoning, self.answer])
        last_user = max((i for i, m in enumerate(self.messages) if m.role == "user"), default=-1)
        attempt = [m for m in self.messages[last_user + 1 :] if m.role == "assistant"]
        written = [text for m in attempt for text in (m.reasoning, m.content) if text]
        return "\n".join([*written, self.answer])


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
    calls: VerifierCalls | None = None,
    tools: list[ToolSpec] | None = None,
) -> Candidate:
    """The candidate a run has reached: its answer with the reasoning and evidence behind it,
    and the tools it was offered."""
    reasoning = [m.reasoning for m in messages if m.reasoning]
    return Candidate(
        task,
        response.content,
        reasoning,
        list(evidence),
        list(messages),
        calls or VerifierCalls(),
        list(tools or []),
    )


class VerifyRounds:
    """Counts verified candidates and keeps the best one, for when the rounds run out.

    The best is the candidate whose verdict had the highest confidence; on a tie, or when no
    verdict gave one, the earliest: an answer changed under feedback that still fails its check
    is no better bet than the model's own first answer. An answer with a calculation proven
    wrong (`resume_from`) ranks below every other but one the answer checks refused.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.checked = 0
        """Candidates a verifier really checked (none when verification is off)."""
        self.best: str | None = None
        self._best_confidence = -math.inf
        self._best_verdict: Verdict | None = None
        self._accepted = False

    @property
    def verified(self) -> bool | None:
        """Whether a conclusive verdict accepted the answer that ended the run; None when no
        verifier checked an answer."""
        return self._accepted if self.checked else None

    @property
    def status(self) -> AnswerStatus:
        """How far the answer that ended the run can be relied on (tools aside)."""
        verdict = self._best_verdict
        if verdict is not None and verdict.refused:
            return "rejected"
        return "unverified" if self.verified is False else "answered"

    @property
    def reason(self) -> str | None:
        """Why `status` is not `answered`, in one line; None when it is."""
        if self.status == "answered":
            return None
        return why_not_accepted(self._best_verdict)

    def ending(
        self, step: int, answer: str, unusable: list[str], messages: list[Message]
    ) -> FinalStep:
        """The step that ends the run with `answer` and the conversation so far; tools the model
        could not use (`unusable`, one line each: a server that did not start) outweigh
        anything said of the answer."""
        status, reason = self.status, self.reason
        if unusable:
            status, reason = "tools_unavailable", "; ".join(unusable)
        return FinalStep(
            step=step,
            answer=answer,
            verified=self.verified,
            status=status,
            reason=reason,
            messages=list(messages),
        )

    def settle(self, answer: str, verdict: Verdict) -> str | None:
        """The run's final answer once `verdict` ends it (accepted or out of rounds), else None."""
        self.count += 1
        self.checked += verdict.checked
        confidence = verdict.confidence if verdict.confidence is not None else 0.0
        if verdict.resume_from is not None:
            confidence = -1.0  # its arithmetic is wrong: any other answer is a better bet
        if verdict.refused:
            confidence = -2.0  # no answer at all, or made up: any answer is a better bet
        if confidence > self._best_confidence:
            self.best, self._best_confidence = answer, confidence
            self._best_verdict = verdict
        if verdict.ok:
            self._accepted = verdict.checked and verdict.conclusive
            self.best, self._best_verdict = answer, verdict
            return answer
        return self.best if self.count >= self.limit else None


def why_not_accepted(verdict: Verdict | None) -> str:
    """One line on why `verdict` did not accept (or confirm) its answer: its first failed
    finding, else what is missing."""
    if verdict is None:
        return "no verifier ran"
    failed = next((f for f in verdict.findings if not f.ok), None)
    if failed is not None:
        reason = f"{verdict.verifier}: {failed.claim} {failed.evidence}"
        if not verdict.refused:
            reason = f"{verdict.verifier}: {failed.claim}: {failed.evidence}"
    elif verdict.ok:
        reason = f"{verdict.verifier} found no problem but no independent derivation confirmed it"
    else:
        reason = f"{verdict.verifier} rejected it"
    return " ".join(reason.split())[:240]
