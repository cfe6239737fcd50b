"""`--verify` specs: `none`, `self`, `consensus:N[:MAJORITY]`, `all:A,B`, `any:A,B`."""

from __future__ import annotations

from collections.abc import Sequence

from verity.errors import UserError
from verity.messages import ToolCall, Verdict
from verity.models.base import Model
from verity.tools.base import ToolResult
from verity.tools.toolset import Toolset
from verity.verify._base import Verifier
from verity.verify._compose import AllOf, AnyOf
from verity.verify._consensus import Consensus, Solver
from verity.verify._recompute import Recompute
from verity.verify._self_check import SelfCheck
from verity.verify._word_problems import check_arguments

__all__ = ["VERIFY_SPECS", "build_verifier", "check_calls"]

VERIFY_SPECS = (
    "none | self[:N[:K]] | recompute[:N[:K]] | consensus:N[:MAJORITY] | all:SPEC,SPEC "
    "| any:SPEC,SPEC"
)
MAX_CONSENSUS_SAMPLES = 16
"""The most samples (consensus: whole runs of the task) or checks (self, recompute) per answer."""


def build_verifier(
    spec: str,
    *,
    model: Model,
    solve: Solver | None = None,
    toolsets: Sequence[Toolset] = (),
) -> Verifier | None:
    """The verifier a `--verify` spec names; None for `none`.

    Args:
        spec: For example `self`, `self:5:3` (up to 5 recomputations, 3 must agree),
            `recompute:3`, `consensus:5:0.6` or `all:self,consensus:3`.
        model: The model that recomputes the answer (best on a context of its own).
        solve: Where consensus gets its independent answers; required when the spec uses it.
        toolsets: Read-only tools self-check may call again.

    Raises:
        UserError: the spec is malformed, or names consensus without a `solve`.
    """
    text = spec.strip().lower()
    for prefix, combine in (("all:", AllOf), ("any:", AnyOf)):
        if text.startswith(prefix):
            parts = [p for p in text[len(prefix) :].split(",") if p.strip()]
            built = [build_verifier(p, model=model, solve=solve, toolsets=toolsets) for p in parts]
            verifiers = [v for v in built if v is not None]
            if not verifiers:
                raise _bad(spec)
            return combine(*verifiers)
    name, _, rest = text.partition(":")
    if name == "none" and not rest:
        return None
    if name in ("self", "recompute"):
        most, agree = _counts(spec, rest)
        if most > MAX_CONSENSUS_SAMPLES:
            raise UserError(
                f"{name}:{most} asks for {most} checks; the most is {MAX_CONSENSUS_SAMPLES}. Each "
                "is an extra model call for every answer checked, so N multiplies the time "
                "verification takes.",
                field="verify",
            )
        if name == "recompute":
            return Recompute(model, samples=most, agree=agree)
        return SelfCheck(model, toolsets=toolsets, samples=most, agree=agree)
    if name == "consensus":
        samples, _, majority = rest.partition(":")
        try:
            n = int(samples) if samples else 3
            share = float(majority) if majority else 0.5
        except ValueError:
            raise _bad(spec) from None
        if n > MAX_CONSENSUS_SAMPLES:
            raise UserError(
                f"consensus:{n} asks for {n} samples; the most is {MAX_CONSENSUS_SAMPLES}. Each "
                "sample is a whole extra run of the task, so N multiplies the time a run takes.",
                field="verify",
            )
        if solve is None:
            raise UserError("consensus needs a solver to sample answers with.", field="verify")
        return Consensus(solve, samples=n, majority=share)
    raise _bad(spec)


def _counts(spec: str, rest: str) -> tuple[int, int]:
    """`N[:K]`: most programs and agreeing ones needed (3 and 2 when left out)."""
    samples, _, agree = rest.partition(":")
    try:
        n = int(samples) if samples else 3
        k = int(agree) if agree else min(2, n)
    except ValueError:
        raise _bad(spec) from None
    return n, k


def _bad(spec: str) -> UserError:
    return UserError(
        f"Unknown --verify {spec!r}. Use one of: {VERIFY_SPECS} (e.g. 'all:self,consensus:3').",
        field="verify",
    )


def check_calls(
    task: str, calls: list[ToolCall], evidence: list[tuple[ToolCall, ToolResult]]
) -> Verdict:
    """The per-step check: numbers in the calls' arguments must come from the task or evidence.

    `evidence` may already hold `calls`; their own results are not counted as sources.
    """
    current = {id(call) for call in calls}
    earlier = [(c, r) for c, r in evidence if id(c) not in current]
    findings = [f for call in calls for f in check_arguments(call, task=task, evidence=earlier)]
    return Verdict(
        ok=not findings,
        verifier="tool-arguments",
        findings=findings,
        scope="tool_calls",
    )
