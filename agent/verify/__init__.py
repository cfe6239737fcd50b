"""Verification of candidate answers before a run accepts them (design D6).

A `Verifier` gets the task, the reasoning, every tool call with its result and the candidate
answer, and returns a `Verdict`. A rejected verdict is data: the loop sends its feedback to the
model. An accepted verdict makes the answer "verified" only when it is conclusive: independent
derivations agreed, or a user's check passed. Built-ins: `SelfCheck` (claims checked against
the evidence, and the answer recomputed), `Recompute` (programs written from the task alone
must compute the answer), `Consensus` (independent answers must agree), `Programmatic` (a user
function), composed with `AllOf` / `AnyOf`. Before any of them, `AnswerChecks` refuses an answer
that is no answer or states facts nothing the run saw holds (`Screened`, on by default).
"""

from verity.verify._acceptance import ANSWER_CHECKS, AnswerChecks, Screened, non_answer
from verity.verify._base import (
    VERIFIER_PURPOSE,
    AcceptAll,
    Candidate,
    Verifier,
    VerifierCalls,
    VerifyRounds,
    candidate_of,
    why_not_accepted,
)
from verity.verify._claims import normalise_answer
from verity.verify._compare import same_answer
from verity.verify._compose import AllOf, AnyOf, Check, Programmatic
from verity.verify._consensus import Consensus, Solver
from verity.verify._grounding import ungrounded_facts
from verity.verify._recompute import Recompute
from verity.verify._self_check import VERDICT_TOOL, SelfCheck
from verity.verify._spec import VERIFY_SPECS, build_verifier, check_calls

__all__ = [
    "ANSWER_CHECKS",
    "VERDICT_TOOL",
    "VERIFIER_PURPOSE",
    "VERIFY_SPECS",
    "AcceptAll",
    "AllOf",
    "AnswerChecks",
    "AnyOf",
    "Candidate",
    "Check",
    "Consensus",
    "Programmatic",
    "Recompute",
    "Screened",
    "SelfCheck",
    "Solver",
    "Verifier",
    "VerifierCalls",
    "VerifyRounds",
    "build_verifier",
    "candidate_of",
    "check_calls",
    "non_answer",
    "normalise_answer",
    "same_answer",
    "ungrounded_facts",
    "why_not_accepted",
]
