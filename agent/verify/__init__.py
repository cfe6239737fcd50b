"""Verification of candidate answers before a run accepts them (design D6).

A `Verifier` gets the task, the reasoning, every tool call with its result and the candidate
answer, and returns a `Verdict`. A rejected verdict is data: the loop sends its feedback to the
model. Built-ins: `SelfCheck` (claims checked against the evidence, then judged by a model),
`Consensus` (independent answers must agree), `Programmatic` (a user function), composed with
`AllOf` / `AnyOf`.
"""

from verity.verify._base import AcceptAll, Candidate, Verifier, VerifyRounds, candidate_of
from verity.verify._claims import normalise_answer
from verity.verify._compose import AllOf, AnyOf, Check, Programmatic
from verity.verify._consensus import Consensus, Solver
from verity.verify._self_check import VERDICT_TOOL, SelfCheck
from verity.verify._spec import VERIFY_SPECS, build_verifier, check_calls

__all__ = [
    "VERDICT_TOOL",
    "VERIFY_SPECS",
    "AcceptAll",
    "AllOf",
    "AnyOf",
    "Candidate",
    "Check",
    "Consensus",
    "Programmatic",
    "SelfCheck",
    "Solver",
    "Verifier",
    "VerifyRounds",
    "build_verifier",
    "candidate_of",
    "check_calls",
    "normalise_answer",
]
