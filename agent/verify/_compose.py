"""User checks as verifiers, and verifiers composed: all of them, or any of them."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from verity.messages import Finding, Verdict
from verity.verify._base import Candidate, Verifier

__all__ = ["AllOf", "AnyOf", "Check", "Programmatic"]

Check = Callable[[Candidate], "bool | Verdict | Awaitable[bool | Verdict]"]
"""A user function, sync or async: True accepts, False rejects, or a whole Verdict."""


class Programmatic:
    """A user function as a verifier: run the unit tests, compare with a known value, ...

    The function returns True, False or a `Verdict`, or raises AssertionError to reject with
    the assertion's message. Any other exception propagates: it is a bug in the check, not a
    verdict on the answer.

    A passed check verifies the answer only with `confirms=True`: say so when passing it makes
    the answer right (a known value, a test suite); a check that only filters (is there a
    number? is it short?) leaves the answer unverified unless another verifier confirms it.
    A `Verdict` the function returns keeps its own `conclusive`.

    Args:
        check: The function, sync or async.
        name: The verifier name recorded in the trace (default: the function's name).
        feedback: Sent to the model when `check` returns False.
        confirms: Passing the check makes the answer verified.
    """

    def __init__(
        self,
        check: Check,
        *,
        name: str | None = None,
        feedback: str = "The answer failed a check. Re-read the task and correct the answer.",
        confirms: bool = False,
    ) -> None:
        self.check = check
        self.name: str = name or str(getattr(check, "__name__", "programmatic"))
        self.feedback = feedback
        self.confirms = confirms

    async def verify(self, candidate: Candidate) -> Verdict:
        """Run the check on the candidate."""
        try:
            outcome = self.check(candidate)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except AssertionError as exc:
            message = str(exc) or self.feedback
            finding = Finding(claim=self.name, ok=False, evidence=message)
            return Verdict(ok=False, verifier=self.name, findings=[finding], feedback=message)
        if isinstance(outcome, Verdict):
            return outcome.model_copy(update={"verifier": outcome.verifier or self.name})
        ok = bool(outcome)
        finding = Finding(claim=self.name, ok=ok, evidence="check passed" if ok else "check failed")
        return Verdict(
            ok=ok,
            verifier=self.name,
            findings=[finding],
            feedback="" if ok else self.feedback,
            conclusive=ok and self.confirms,
        )


class AllOf:
    """Accepts when every verifier accepts; stops at the first rejection (cheap checks first).

    The acceptance is conclusive ("verified") when one of the verifiers' is: every check
    passed and at least one confirmed the answer.
    """

    def __init__(self, *verifiers: Verifier) -> None:
        self.verifiers = verifiers
        self.name = f"all({','.join(_name(v) for v in verifiers)})"

    async def verify(self, candidate: Candidate) -> Verdict:
        """Run the verifiers in order until one rejects."""
        verdicts = []
        for verifier in self.verifiers:
            verdicts.append(await verifier.verify(candidate))
            if not verdicts[-1].ok:
                break
        ok = all(v.ok for v in verdicts)
        conclusive = ok and any(v.conclusive for v in verdicts)
        return _merge(self.name, verdicts, ok=ok, conclusive=conclusive, pick=min)


class AnyOf:
    """Accepts when one verifier accepts; stops at the first conclusive acceptance.

    The acceptance is conclusive when an accepting verifier's is.
    """

    def __init__(self, *verifiers: Verifier) -> None:
        self.verifiers = verifiers
        self.name = f"any({','.join(_name(v) for v in verifiers)})"

    async def verify(self, candidate: Candidate) -> Verdict:
        """Run the verifiers in order until one accepts."""
        verdicts = []
        for verifier in self.verifiers:
            verdicts.append(await verifier.verify(candidate))
            if verdicts[-1].ok and verdicts[-1].conclusive:
                break
        ok = any(v.ok for v in verdicts)
        conclusive = any(v.ok and v.conclusive for v in verdicts)
        return _merge(self.name, verdicts, ok=ok, conclusive=conclusive, pick=max)


def _name(verifier: Verifier) -> str:
    return str(getattr(verifier, "name", type(verifier).__name__))


def _merge(
    name: str,
    verdicts: list[Verdict],
    *,
    ok: bool,
    conclusive: bool,
    pick: Callable[[list[float]], float],
) -> Verdict:
    confidences = [v.confidence for v in verdicts if v.confidence is not None]
    return Verdict(
        ok=ok,
        verifier=name,
        findings=[
            f.model_copy(update={"claim": f"{v.verifier}: {f.claim}"})
            for v in verdicts
            for f in v.findings
        ],
        feedback="" if ok else "\n\n".join(v.feedback for v in verdicts if v.feedback),
        confidence=pick(confidences) if confidences else None,
        checked=any(v.checked for v in verdicts),
        conclusive=conclusive,
        samples=[s for v in verdicts for s in v.samples],
        resume_from=None if ok else next((v.resume_from for v in verdicts if v.resume_from), None),
    )
