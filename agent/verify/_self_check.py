"""The self-check verifier: code checks the numeric claims, then a model judges the rest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from verity.messages import Finding, Message, Verdict
from verity.models.base import Model
from verity.prompts import load_prompt
from verity.tools.base import ToolSpec, is_read_only
from verity.tools.toolset import Toolset, call_tool
from verity.verify._base import Candidate
from verity.verify._claims import (
    arithmetic_claims,
    check_arguments,
    check_coverage,
    check_numbers,
)

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
    """Checks the claims an answer relies on against the tool evidence, then asks a model.

    Code does what code can do reliably: every `a op b = c` in the answer and reasoning is
    recomputed with the calculator, every number in the answer must come from a tool result, the
    task, or one step of arithmetic on the task's numbers, and read-only tool calls are run again
    to see whether their results still hold. Then `model` (the run's model, or a separate
    verifier model) sees the task, the evidence, those findings and the answer and submits a
    verdict through the `submit_verdict` tool, so its output always fits the verdict schema.

    Args:
        model: The judging model; None runs the code checks only.
        toolsets: Where read-only tools are found to run again (entered by the caller).
        trust_model: Let the model reject an answer the code checks passed. Off means the model's
            findings are recorded and sent as feedback only alongside a code finding.
        tool_timeout: Seconds a repeated tool call may take.
    """

    name = "self-check"

    def __init__(
        self,
        model: Model | None = None,
        *,
        toolsets: Sequence[Toolset] = (),
        trust_model: bool = True,
        tool_timeout: float = 30.0,
    ) -> None:
        self.model = model
        self.toolsets = list(toolsets)
        self.trust_model = trust_model
        self.tool_timeout = tool_timeout

    async def verify(self, candidate: Candidate) -> Verdict:
        """Check the candidate's claims; a rejected verdict says which claims failed and why.

        Raises:
            ModelError: the judging model's backend failed.
        """
        written = "\n".join([*candidate.reasoning, candidate.answer])
        task, evidence = candidate.task, candidate.evidence
        findings = [
            *arithmetic_claims(written),
            *(
                finding
                for index, (call, _) in enumerate(evidence)
                for finding in check_arguments(call, task=task, evidence=evidence[:index])
            ),
            *check_numbers(candidate.answer, task=task, evidence=evidence),
            *check_coverage(written, task=task, evidence=evidence),
            *await self._rerun_tools(candidate),
        ]
        code_ok = all(f.ok for f in findings)
        confidence = sum(f.ok for f in findings) / len(findings) if findings else 1.0
        judged = await self._judge(candidate, findings) if self.model is not None else None
        model_feedback = ""
        ok = code_ok
        if judged is not None:
            model_ok, model_findings, model_feedback, model_confidence = judged
            findings.extend(model_findings)
            ok = code_ok and (model_ok or not self.trust_model)
            confidence *= model_confidence
        return Verdict(
            ok=ok,
            verifier=self.name,
            findings=findings,
            feedback="" if ok else _feedback(findings, model_feedback),
            confidence=confidence,
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

    async def _judge(
        self, candidate: Candidate, findings: list[Finding]
    ) -> tuple[bool, list[Finding], str, float] | None:
        assert self.model is not None
        messages = [
            Message(role="system", content=load_prompt("verifier")),
            Message(role="user", content=_render(candidate, findings)),
        ]
        response = await self.model.respond(messages, [VERDICT_TOOL], tool_choice=VERDICT_TOOL.name)
        if not response.tool_calls:
            return None  # the grammar makes this rare; the code checks still stand
        submitted: dict[str, Any] = response.tool_calls[0].arguments
        model_findings = [
            Finding(
                claim=f"model: {f.get('claim', '')}", ok=bool(f.get("ok")), evidence=f["evidence"]
            )
            for f in submitted.get("findings", [])
        ]
        confidence = min(max(float(submitted.get("confidence", 0.5)), 0.0), 1.0)
        ok = bool(submitted.get("ok")) and all(f.ok for f in model_findings)
        return ok, model_findings, str(submitted.get("feedback", "")), confidence


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


def _feedback(findings: list[Finding], model_feedback: str) -> str:
    failed = [f for f in findings if not f.ok]
    lines = ["Verification found problems in your answer:"]
    lines += [f"- {f.claim}: {f.evidence}" for f in failed]
    if model_feedback.strip():
        lines.append(f"Reviewer: {model_feedback.strip()}")
    lines.append(
        "Check each step against the tool results, recompute with the calculator where a "
        "number is wrong or unsupported, and give the corrected final answer. Do not repeat "
        "the same calculation: set the problem up again, using every quantity the task gives."
    )
    return "\n".join(lines)
