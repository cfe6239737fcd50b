"""Verification rounds in the loop, with a scripted model: feedback, limits, the best answer."""

from __future__ import annotations

import anyio

from verity import (
    FinalStep,
    Message,
    Model,
    ModelError,
    ModelResponse,
    ModelStep,
    RunHooks,
    RunSettings,
    ToolStep,
    Verdict,
    VerdictReached,
    VerifyStep,
    run,
)
from verity.messages import Finding
from verity.models.base import ToolChoice
from verity.solver import seeded_solver
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import ToolSpec, tool
from verity.tools.toolset import FunctionToolset
from verity.verify import Candidate, Consensus, Programmatic, SelfCheck


@tool(read_only=True)
def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: First factor.
        b: Second factor.
    """
    return a * b


class ScriptedVerdicts:
    """Hands out prepared verdicts in order and keeps what it was asked to judge."""

    def __init__(self, *verdicts: Verdict) -> None:
        self.verdicts = list(verdicts)
        self.candidates: list[Candidate] = []

    async def verify(self, candidate: Candidate) -> Verdict:
        self.candidates.append(candidate)
        return self.verdicts[len(self.candidates) - 1]


class VerdictLog(RunHooks):
    def __init__(self) -> None:
        self.verdicts: list[tuple[int, Verdict]] = []

    async def on_verdict(self, event: VerdictReached) -> None:
        self.verdicts.append((event.step, event.verdict))


def rejected(feedback: str, confidence: float) -> Verdict:
    return Verdict(ok=False, verifier="scripted", feedback=feedback, confidence=confidence)


async def test_rejected_verdict_feedback_reaches_the_model_and_the_fixed_answer_is_verified() -> (
    None
):
    model = ScriptedModel([answer("40"), answer("42")])
    verifier = ScriptedVerdicts(
        rejected("6 * 7 is 42, not 40.", 0.1), Verdict(ok=True, verifier="scripted")
    )
    with anyio.fail_after(5):
        result = await run("6 * 7?", model=model, verifier=verifier)
    assert (result.answer, result.verified) == ("42", True)
    second_request, _ = model.requests[1]
    assert second_request[-1].role == "user"
    assert second_request[-1].content == "6 * 7 is 42, not 40."
    assert [c.answer for c in verifier.candidates] == ["40", "42"]
    assert [type(s) for s in result.steps] == [ModelStep, VerifyStep] * 2 + [FinalStep]
    model.assert_complete()


async def test_when_verify_rounds_run_out_the_best_answer_ends_the_run_unverified() -> None:
    model = ScriptedModel([answer("41"), answer("40"), answer("39")])
    verifier = ScriptedVerdicts(
        rejected("no", 0.2), rejected("closer", 0.6), rejected("worse", 0.1)
    )
    with anyio.fail_after(5):
        result = await run(
            "6 * 7?", model=model, verifier=verifier, settings=RunSettings(max_verify_rounds=3)
        )
    assert (result.answer, result.verified) == ("40", False)
    assert result.steps[-1].model_copy(update={"messages": []}) == FinalStep(
        step=3, answer="40", verified=False, status="unverified", reason="scripted rejected it"
    )
    model.assert_complete()


async def test_one_verify_round_ends_the_run_after_the_first_rejection() -> None:
    model = ScriptedModel([answer("41")])
    verifier = ScriptedVerdicts(rejected("no", 0.5))
    with anyio.fail_after(5):
        result = await run(
            "6 * 7?", model=model, verifier=verifier, settings=RunSettings(max_verify_rounds=1)
        )
    assert (result.answer, result.verified) == ("41", False)
    model.assert_complete()


async def test_running_out_of_steps_after_a_rejected_answer_keeps_that_answer_unverified() -> None:
    model = ScriptedModel([answer("41"), calls(("multiply", {"a": 6, "b": 7}))])
    verifier = ScriptedVerdicts(rejected("Use the tool.", 0.3))
    with anyio.fail_after(5):
        result = await run(
            "6 * 7?",
            model=model,
            toolsets=[FunctionToolset([multiply])],
            verifier=verifier,
            settings=RunSettings(max_steps=2, max_verify_rounds=3),
        )
    assert result.steps[-1].model_copy(update={"messages": []}) == FinalStep(
        step=2, answer="41", verified=False, status="unverified", reason="scripted rejected it"
    )
    model.assert_complete()


async def test_the_verifier_sees_the_task_every_tool_call_with_its_result_and_the_answer() -> None:
    model = ScriptedModel([calls(("multiply", {"a": 6, "b": 7})), answer("It is 42.")])
    verifier = ScriptedVerdicts(Verdict(ok=True, verifier="scripted"))
    with anyio.fail_after(5):
        await run("6 * 7?", model=model, toolsets=[FunctionToolset([multiply])], verifier=verifier)
    (candidate,) = verifier.candidates
    assert (candidate.task, candidate.answer) == ("6 * 7?", "It is 42.")
    [(call, result)] = candidate.evidence
    assert (call.name, call.arguments, result.content) == ("multiply", {"a": 6, "b": 7}, "42.0")
    model.assert_complete()


async def test_a_programmatic_rejection_is_feedback_not_an_exception() -> None:
    def is_42(candidate: Candidate) -> bool:
        if "42" not in candidate.answer:
            raise AssertionError("The product of 6 and 7 is not in the answer.")
        return True

    model = ScriptedModel([answer("41"), answer("42")])
    with anyio.fail_after(5):
        result = await run("6 * 7?", model=model, verifier=Programmatic(is_42, confirms=True))
    assert (result.answer, result.verified) == ("42", True)
    messages, _ = model.requests[1]
    assert messages[-1].content == "The product of 6 and 7 is not in the answer."
    model.assert_complete()


async def test_tool_argument_checks_are_recorded_per_step_when_switched_on() -> None:
    model = ScriptedModel([calls(("multiply", {"a": 6, "b": 9})), answer("54")])
    hooks = VerdictLog()
    with anyio.fail_after(5):
        result = await run(
            "What is 6 times 7?",
            model=model,
            toolsets=[FunctionToolset([multiply])],
            hooks=hooks,
            settings=RunSettings(check_tool_arguments=True),
        )
    kinds = [type(s) for s in result.steps]
    assert kinds == [ModelStep, ToolStep, ModelStep, VerifyStep, FinalStep]
    step, verdict = hooks.verdicts[0]
    assert step == 1
    assert verdict == Verdict(
        ok=False,
        verifier="tool-arguments",
        findings=[
            Finding(
                claim="multiply argument 9",
                ok=False,
                evidence="This number is in neither the task nor any earlier tool result.",
            )
        ],
        scope="tool_calls",
    )
    assert hooks.verdicts[1][1].scope == "answer"
    model.assert_complete()


async def test_tool_arguments_are_not_checked_by_default() -> None:
    model = ScriptedModel([calls(("multiply", {"a": 6, "b": 9})), answer("54")])
    hooks = VerdictLog()
    with anyio.fail_after(5):
        await run("6 * 7?", model=model, toolsets=[FunctionToolset([multiply])], hooks=hooks)
    assert [v.scope for _, v in hooks.verdicts] == ["answer"]
    model.assert_complete()


class OverflowingModel:
    """A backend whose conversation no longer fits its context."""

    name = "overflowing"

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        raise ModelError("The conversation needs 4125 tokens but the context holds 4096.")


async def test_consensus_counts_a_sample_that_outgrew_the_context_as_a_missing_vote() -> None:
    answers: dict[int, Model] = {
        1: ScriptedModel([answer("The answer is 42.")]),
        2: OverflowingModel(),
    }
    solve = seeded_solver(lambda seed: answers[seed])
    with anyio.fail_after(5):
        verdict = await Consensus(solve, samples=3).verify(
            Candidate(task="6 * 7?", answer="6 * 7 = 42")
        )
    assert verdict.findings == [
        Finding(
            claim="final answer 42",
            ok=True,
            evidence="2 of 3 answers agree; independent attempts gave: 42 x1.",
        )
    ]
    assert verdict.ok
    first = answers[1]
    assert isinstance(first, ScriptedModel)
    first.assert_complete()


async def test_an_accepted_but_inconclusive_verdict_ends_the_run_unverified() -> None:
    model = ScriptedModel([answer("42")])
    verifier = ScriptedVerdicts(Verdict(ok=True, verifier="scripted", conclusive=False))
    with anyio.fail_after(5):
        result = await run("6 * 7?", model=model, verifier=verifier)
    # nothing was wrong, nothing was confirmed: the answer stands, and is not called verified
    assert (result.answer, result.verified) == ("42", False)
    why = "scripted found no problem but no independent derivation confirmed it"
    assert result.steps[-1].model_copy(update={"messages": []}) == FinalStep(
        step=1, answer="42", verified=False, status="unverified", reason=why
    )
    model.assert_complete()


SLIPPED = "Total: 204 + 160 + 330 = 794 dollars. The answer is 794."
"""An answer whose sum is wrong: the self-check's code finds it without a model."""


async def test_a_model_that_can_continue_goes_on_from_the_corrected_step() -> None:
    fixed = "Total: 204 + 160 + 330 = 694 dollars. The answer is 694."
    model = ScriptedModel([answer(SLIPPED), answer(fixed)], continues_answers=True)
    with anyio.fail_after(5):
        result = await run("Add 204, 160 and 330.", model=model, verifier=SelfCheck())
    resumed, _ = model.requests[1]
    # no feedback to answer: the wrong answer is replaced by its beginning, corrected
    assert [m.role for m in resumed] == ["system", "user", "assistant"]
    assert resumed[-1].content == resumed[-1].raw == "Total: 204 + 160 + 330 = 694"
    assert result.answer == fixed
    assert result.verified is False  # code checks alone confirm nothing
    model.assert_complete()


async def test_a_model_that_cannot_continue_is_told_what_was_wrong() -> None:
    fixed = "Total: 204 + 160 + 330 = 694 dollars. The answer is 694."
    model = ScriptedModel([answer(SLIPPED), answer(fixed)])
    with anyio.fail_after(5):
        result = await run("Add 204, 160 and 330.", model=model, verifier=SelfCheck())
    second, _ = model.requests[1]
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert "the calculator gives 204 + 160 + 330 = 694" in second[-1].content
    assert second[-2].content == SLIPPED
    assert result.answer == fixed


async def test_an_answer_with_a_wrong_calculation_is_the_last_choice_when_rounds_run_out() -> None:
    model = ScriptedModel([answer("41"), answer("40")])
    slipped = Verdict(ok=False, verifier="scripted", feedback="no", resume_from="6 * 7 = 42")
    verifier = ScriptedVerdicts(slipped, rejected("still no", 0.0))
    with anyio.fail_after(5):
        result = await run(
            "6 * 7?", model=model, verifier=verifier, settings=RunSettings(max_verify_rounds=2)
        )
    # the tie (no confidence either way) goes to the answer not proven wrong, not the earliest
    assert (result.answer, result.verified) == ("40", False)


async def test_a_slip_in_an_earlier_attempt_s_reasoning_does_not_reject_the_repair() -> None:
    slipped = ModelResponse(content="The answer is 5.", reasoning="2 + 2 = 5", raw="x")
    repaired = ModelResponse(content="The answer is 4.", reasoning="2 + 2 = 4", raw="y")
    model = ScriptedModel([slipped, repaired])
    verdicts = VerdictLog()
    with anyio.fail_after(5):
        result = await run("What is 2 + 2?", model=model, verifier=SelfCheck(), hooks=verdicts)
    assert [v.ok for _, v in verdicts.verdicts] == [False, True]
    assert result.answer == "The answer is 4."
