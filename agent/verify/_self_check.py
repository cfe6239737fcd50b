"""The self-check verifier: code checks the claims, and the answer is derived again."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from verity.messages import Finding, Message, ToolCall, Verdict
from verity.models.base import Model
from verity.prompts import load_prompt
from verity.tools.base import ToolResult, ToolSpec, is_read_only
from verity.tools.toolset import Toolset, call_tool
from verity.verify._base import Candidate, repair_feedback
from verity.verify._claims import arithmetic_claims
from verity.verify._recompute import Recompute
from verity.verify._resume import resume_point
from verity.verify._word_problems import check_arguments, check_coverage, untraced_numbers

__all__ = ["VERDICT_TOOL", "SelfCheck"]

_FINDING_SCHEMA = {
    "type": "object",
    "properties": {
        "claim": {"type": "string", "maxLength": 160},
        "ok": {"type": "boolean"},
        "evidence": {"type": "string", "maxLength": 240},
    },
    "required": ["claim", "ok", "evidence"],
}
VERDICT_TOOL = ToolSpec(
    name="submit_verdict",
    description="Submit your verdict on the answer: the claims you checked, then the decision.",
    parameters={
        "type": "object",
        "properties": {
            "findings": {"type": "array", "items": _FINDING_SCHEMA, "maxItems": 4},
            "ok": {"type": "boolean"},
            "feedback": {"type": "string", "maxLength": 400},
            "confidence": {"type": "number"},
        },
        "required": ["findings", "ok", "feedback", "confidence"],
    },
    read_only=True,
)
"""Offered as the only callable tool: the call grammar then guarantees a schema-valid verdict."""


class SelfCheck:
    """Checks the claims an answer relies on, and derives the answer again independently.

    Code does what code can do reliably: every `a op b = c` in the answer and reasoning is
    recomputed with the calculator, every number in the answer must trace to the task, a tool
    result, a correct calculation from those, or a recomputation's values, the numbers in tool
    arguments must come from the task or earlier results, and read-only tool calls are run again
    to see whether their results still hold. With a `model`, the answer is also derived again by
    `Recompute` (programs the model writes from the task alone, run by code): only agreement
    makes the verdict conclusive, so an answer is "verified" only when an independent
    derivation reached it and no claim failed. Without a model nothing is conclusive: the code
    checks can reject an answer, never confirm it.

    A rejected answer with a wrong calculation carries `resume_from`: its text up to the first
    wrong result, the calculator's value in its place, for the model to go on from.

    With `judge`, the model also submits a verdict of its own through the `submit_verdict` tool
    (its output always fits the schema); it can only reject, never verify.

    Args:
        model: The model that recomputes (and judges); None runs the code checks only.
        toolsets: Where read-only tools are found to run again (entered by the caller).
        samples: Most programs written per check (see `Recompute`).
        agree: Agreeing programs needed for a conclusive verdict.
        judge: Ask the model for a verdict of its own as well.
        tool_timeout: Seconds a repeated tool call may take.
    """

    name = "self-check"

    def __init__(
        self,
        model: Model | None = None,
        *,
        toolsets: Sequence[Toolset] = (),
        samples: int = 3,
        agree: int = 2,
        judge: bool = False,
        tool_timeout: float = 30.0,
    ) -> None:
        self.model = model
        self.toolsets = list(toolsets)
        self.recompute = Recompute(model, samples=samples, agree=agree) if model else None
        self.judge = judge
        self.tool_timeout = tool_timeout

    async def verify(self, candidate: Candidate) -> Verdict:
        """Check the candidate's claims and recompute it; a rejection says what failed and why.

        Raises:
            ModelError: the model backend failed.
        """
        written = candidate.working()  # a slip in an earlier, rejected attempt is not this one's
        task, evidence = candidate.task, candidate.evidence
        claims = [
            *arithmetic_claims(written),
            *(
                finding
                for index, (call, _) in enumerate(evidence)
                for finding in check_arguments(call, task=task, evidence=evidence[:index])
            ),
            *await self._rerun_tools(candidate),
        ]
        recomputed = None
        if self.recompute is not None and all(f.ok for f in claims):  # else: rejected already
            recomputed = await self.recompute.verify(candidate)
        known = [
            value
            for program in (self.recompute.programs(task) if self.recompute else [])
            if program.value is not None
            for value in program.names.values()
        ]
        claims += untraced_numbers(candidate.answer, task=task, evidence=evidence, known=known)
        recompute_ok = recomputed is None or recomputed.ok
        if self.judge and self.model is not None and recompute_ok and all(f.ok for f in claims):
            claims += await self._judge(candidate, claims)
        ok = recompute_ok and all(f.ok for f in claims)
        failed = [f for f in claims if not f.ok]
        if not recompute_ok and recomputed is not None:
            failed += [f for f in recomputed.findings if not f.ok]
        return Verdict(
            ok=ok,
            verifier=self.name,
            findings=claims + (recomputed.findings if recomputed else []),
            feedback="" if ok else repair_feedback(failed, extra=_unused(written, task, evidence)),
            confidence=recomputed.confidence if recomputed else None,
            conclusive=ok and recomputed is not None and recomputed.conclusive,
            samples=recomputed.samples if recomputed else [],
            resume_from=None if ok else resume_point(candidate.answer),
        )

    async def _rerun_tools(self, candidate: Candidate) -> list[Finding]:
        if not self.toolsets or not candidate.evidence:
            return []
        owners: dict[str, Toolset] = {}
        for toolset in self.toolsets:
            for spec in await toolset.list_tools():
                if is_read_only(spec):
                    owners.setdefault(spec.name, toolset)
        findings = []
        for call, recorded in candidate.evidence:
            if call.name not in owners or recorded.is_error:
                continue
            again = await call_tool(
                owners[call.name], call.name, call.arguments, time_limit=self.tool_timeout
            )
            if again.content.strip() != recorded.content.strip():
                findings.append(
                    Finding(
                        claim=f"{call.name}({_arguments(call.arguments)}) = {recorded.content}",
                        ok=False,
                        evidence=f"Called again, it gives {again.content[:200]}.",
                    )
                )
        return findings

    async def _judge(self, candidate: Candidate, findings: list[Finding]) -> list[Finding]:
        assert self.model is not None
        messages = [
            Message(role="system", content=load_prompt("verifier")),
            Message(role="user", content=_render(candidate, findings)),
        ]
        response = await candidate.calls.respond(
            self.model, messages, [VERDICT_TOOL], tool_choice=VERDICT_TOOL.name
        )
        if not response.tool_calls:
            return []  # the grammar makes this rare; the code checks still stand
        submitted: dict[str, Any] = response.tool_calls[0].arguments
        judged = [
            Finding(
                claim=f"judge: {f.get('claim', '')}", ok=bool(f.get("ok")), evidence=f["evidence"]
            )
            for f in submitted.get("findings", [])
        ]
        if not submitted.get("ok") and all(f.ok for f in judged):
            feedback = str(submitted.get("feedback", "")).strip() or "the answer does not hold"
            judged.append(Finding(claim="judge", ok=False, evidence=feedback))
        return judged


def _unused(written: str, task: str, evidence: list[tuple[ToolCall, ToolResult]]) -> list[str]:
    """Task numbers nothing used: a hint for the repair, not a reason to reject."""
    unused = check_coverage(written, task=task, evidence=evidence, words=True)
    return [f"{f.claim}: {f.evidence}" for f in unused]


def _arguments(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in arguments.items())


def _render(candidate: Candidate, findings: list[Finding]) -> str:
    lines = [f"Task:\n{candidate.task}", "", "Tool calls and their results:"]
    for call, result in candidate.evidence:
        outcome = f"error: {result.content}" if result.is_error else result.content
        lines.append(f"- {call.name}({_arguments(call.arguments)}) -> {outcome[:300]}")
    if not candidate.evidence:
        lines.append("- (no tools were called)")
    lines += ["", "Automatic checks:"]
    lines += [f"- {f.claim}: {'holds' if f.ok else 'FAILS'} ({f.evidence})" for f in findings]
    if not findings:
        lines.append("- (no numeric claims to check)")
    if candidate.reasoning:
        lines += ["", "Reasoning:", *candidate.reasoning]
    lines += ["", f"Answer to check:\n{candidate.answer}"]
    return "\n".join(lines)
