"""Recomputation, and attempts to get a wrong answer marked verified.

The programs come from a scripted model (what a model might write, including hostile code); the
running, comparing and deciding is the real code. The real model's programs are in the slow
tests at the end.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from verity import LlamaCppModel, ModelCallEnded, RunHooks, RunSettings, ToolCall, Usage, run
from verity.messages import Finding, Message, ModelResponse, Verdict
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import ToolResult
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.verify import AllOf, Candidate, Consensus, Recompute, SelfCheck

DUCKS = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' market "
    "daily for $2 per fresh duck egg. How much in dollars does she make every day?"
)
RIGHT = "eggs = 16\nleft = eggs - 3 - 4\nanswer = left * 2"
RIGHT_TOO = "```python\ndef solution():\n    return (16 - 7) * 2\n```"
WRONG = "eggs = 16\nleft = eggs - 3\nanswer = left * 2"
SOLD = "She sells 16 - 3 - 4 = 9 eggs: she makes 9 * 2 = $18 a day."
"""An answer whose working uses every number the task gives (agreement can confirm it)."""


def programs(*sources: str) -> ScriptedModel:
    """A model that writes these programs, in order, with 10 tokens per call."""
    return ScriptedModel(
        [
            ModelResponse(content=s, usage=Usage(prompt_tokens=5, completion_tokens=10))
            for s in sources
        ]
    )


def ducks(text: str, evidence: list[tuple[ToolCall, ToolResult]] | None = None) -> Candidate:
    return Candidate(task=DUCKS, answer=text, evidence=evidence or [])


async def test_two_different_programs_that_compute_the_answer_verify_it() -> None:
    writer = programs(RIGHT, RIGHT_TOO)
    with anyio.fail_after(5):
        verdict = await Recompute(writer).verify(ducks(SOLD))
    assert (verdict.ok, verdict.conclusive, verdict.confidence) == (True, True, 1.0)
    assert [(s.answer, s.agrees) for s in verdict.samples] == [("18", True), ("18", True)]
    # the programs were written from the task alone: the answer was never shown
    for messages, tools in writer.requests:
        assert tools == []
        assert "$18" not in " ".join(m.content for m in messages)
        assert DUCKS in messages[-1].content
    writer.assert_complete()  # two agreeing programs are enough: no third one is asked for


async def test_the_same_program_twice_is_one_derivation_and_verifies_nothing() -> None:
    writer = programs(RIGHT, RIGHT, RIGHT)
    with anyio.fail_after(5):
        verdict = await Recompute(writer, samples=3, agree=2).verify(ducks("The answer is 18."))
    assert (verdict.ok, verdict.conclusive) == (True, False)
    assert len(verdict.samples) == 1


async def test_a_disagreeing_recomputation_rejects_and_says_what_it_computed() -> None:
    writer = programs(RIGHT, RIGHT_TOO)
    with anyio.fail_after(5):
        verdict = await Recompute(writer).verify(ducks("She makes $26 a day."))
    assert (verdict.ok, verdict.conclusive, verdict.confidence) == (False, False, 0.0)
    assert verdict.feedback == (
        "Verification did not confirm your answer:\n"
        "- a program written from the task alone (seed 0): computes 18, not 26; its values: "
        "eggs = 16, left = 9, answer = 18\n"
        "- a program written from the task alone (seed 1): computes 18, not 26\n"
        "Check each step of your solution against this, redo any wrong step with the calculator, "
        "and give your final answer."
    )
    writer.assert_complete()  # after two dissents, agreement was out of reach: it stopped


async def test_an_answer_that_repeats_the_quoted_value_needs_one_more_agreeing_program() -> None:
    writer = programs(RIGHT, RIGHT_TOO, WRONG, "answer = 2 * (16 - 3 - 4)")
    recompute = Recompute(writer, samples=3, agree=2)
    with anyio.fail_after(5):
        rejected = await recompute.verify(ducks("She makes $26 a day."))
        repeated = await recompute.verify(ducks("She makes $18 a day."))
    assert not rejected.ok
    # 18 was quoted in the feedback, so an answer of 18 adds no evidence of its own: three
    # programs must compute it, not two; and the third one written disagrees, so it stays
    # unverified even though the fourth agrees
    assert (repeated.ok, repeated.conclusive) == (True, False)
    assert [s.answer for s in repeated.samples] == ["18", "18", "26", "18"]
    writer.assert_complete()


async def test_an_answer_quoted_in_feedback_is_verified_by_three_agreeing_programs() -> None:
    third = "answer = (16 - 4 - 3) * 2"
    writer = programs(RIGHT, RIGHT_TOO, third)
    recompute = Recompute(writer, samples=3, agree=2)
    with anyio.fail_after(5):
        rejected = await recompute.verify(ducks("She makes $26 a day."))
        repeated = await recompute.verify(ducks(SOLD))
    assert not rejected.ok
    assert (repeated.ok, repeated.conclusive) == (True, True)
    assert [s.answer for s in repeated.samples] == ["18", "18", "18"]


async def test_a_program_that_tries_to_run_code_is_never_run_and_is_no_evidence(
    tmp_path: Path,
) -> None:
    target = tmp_path / "pwned"
    hostile = [
        f"answer = open({str(target)!r}, 'w').write('x')",
        f"import os\nos.system('touch {target}')\nanswer = 18",
        "answer = __import__('os').getpid()",
    ]
    writer = programs(*hostile)
    with anyio.fail_after(5):
        verdict = await Recompute(writer, samples=3, agree=1).verify(ducks("The answer is 18."))
    assert not target.exists()
    assert (verdict.ok, verdict.conclusive) == (True, False)
    assert all(f.ok and f.evidence.startswith("could not run:") for f in verdict.findings)


async def test_a_confidently_wrong_answer_with_plausible_claims_is_not_verified() -> None:
    # every equation is right and every number comes from the task: only the setup is wrong
    # (she also bakes with four eggs); the claim checks pass, the recomputation does not
    confident = (
        "Janet has 16 eggs and eats 3, so 16 - 3 = 13 eggs are left. At $2 each she makes "
        "13 * 2 = $26. I checked each step: the answer is 26."
    )
    evidence = [
        (
            ToolCall(id="c0", name="calculator", arguments={"expression": "16 - 3"}),
            ToolResult("13"),
        ),
        (
            ToolCall(id="c1", name="calculator", arguments={"expression": "13 * 2"}),
            ToolResult("26"),
        ),
    ]
    writer = programs(RIGHT, RIGHT_TOO)
    with anyio.fail_after(5):
        verdict = await SelfCheck(writer).verify(ducks(confident, evidence))
    assert not verdict.ok and not verdict.conclusive
    assert [f.ok for f in verdict.findings if f.claim.startswith("13 * 2")] == [True]
    assert "computes 18, not 26" in verdict.feedback
    # the setup's mistake, named: the task's "four" (eggs for the muffins) is used nowhere
    assert "- task number 4: The task gives this number, but no calculation" in verdict.feedback


async def test_a_consensus_of_identical_wrong_samples_is_overruled_by_the_recomputation() -> None:
    async def same_wrong_answer(task: str, seed: int) -> str:
        return "She makes 13 * 2 = $26."

    consensus = Consensus(same_wrong_answer, samples=5)
    writer = programs(RIGHT, RIGHT_TOO)
    with anyio.fail_after(5):
        verdict = await AllOf(consensus, Recompute(writer)).verify(ducks("The answer is 26."))
    assert verdict.findings[0] == Finding(
        claim="consensus: final answer 26",
        ok=True,
        evidence="5 of 5 answers agree; independent attempts gave: 26 x4.",
    )
    assert (verdict.ok, verdict.conclusive) == (False, False)


async def test_a_number_with_no_source_is_not_verified_even_when_the_final_number_is() -> None:
    # 18 is right and the programs confirm it, but 11 comes from nowhere
    writer = programs(RIGHT, RIGHT_TOO)
    with anyio.fail_after(5):
        verdict = await SelfCheck(writer).verify(ducks("She sells 11 eggs and makes $18."))
    assert (verdict.ok, verdict.conclusive) == (False, False)
    assert "- the number 11: has no source" in verdict.feedback


async def test_an_answer_without_a_number_is_accepted_unverified_without_asking_the_model() -> None:
    writer = programs()
    with anyio.fail_after(5):
        verdict = await Recompute(writer).verify(Candidate(task="Name a color.", answer="Blue."))
    assert verdict == Verdict(
        ok=True,
        verifier="recompute",
        findings=[
            Finding(
                claim="final answer",
                ok=True,
                evidence="The answer has no final number to recompute.",
            )
        ],
        conclusive=False,
    )


class ModelCallLog(RunHooks):
    def __init__(self) -> None:
        self.ends: list[tuple[int, str, str]] = []

    async def on_model_end(self, event: ModelCallEnded) -> None:
        self.ends.append((event.step, event.purpose, event.response.content))


async def test_the_verifiers_model_calls_are_traced_and_counted_in_the_runs_usage() -> None:
    agent = ScriptedModel(
        [ModelResponse(content=SOLD, usage=Usage(prompt_tokens=50, completion_tokens=5))]
    )
    writer = programs(RIGHT, RIGHT_TOO)
    log = ModelCallLog()
    with anyio.fail_after(5):
        result = await run(DUCKS, model=agent, verifier=Recompute(writer), hooks=log)
    assert result.verified is True
    assert log.ends == [
        (1, "agent", SOLD),
        (1, "verifier", RIGHT),
        (1, "verifier", RIGHT_TOO),
    ]
    assert result.usage == Usage(prompt_tokens=60, completion_tokens=25)
    [verify_step] = [s for s in result.steps if s.kind == "verify"]
    assert verify_step.verdict.usage == Usage(prompt_tokens=10, completion_tokens=20)


async def test_a_run_whose_recomputation_never_agrees_ends_unverified_with_the_best_answer() -> (
    None
):
    agent = ScriptedModel([answer("The answer is 26."), answer("The answer is 26.")])
    writer = programs(RIGHT, RIGHT_TOO)
    with anyio.fail_after(5):
        result = await run(
            DUCKS,
            model=agent,
            verifier=Recompute(writer),
            settings=RunSettings(max_verify_rounds=2),
        )
    assert (result.answer, result.verified) == ("The answer is 26.", False)
    feedback = agent.requests[1][0][-1]
    assert feedback.role == "user" and "computes 18, not 26" in feedback.content
    agent.assert_complete()


@pytest.mark.slow
async def test_the_real_model_verifies_only_answers_its_programs_compute(
    greedy_model: LlamaCppModel,
) -> None:
    judge = greedy_model.with_own_context(n_ctx=2048)
    task = "A shop sells 17 boxes of 24 apples and 5 loose apples. How many apples is that?"
    with anyio.fail_after(300):
        # one verifier each: a value quoted to the model in feedback would need more evidence
        wrong = await Recompute(judge, samples=2, agree=2).verify(
            Candidate(task, "17 * 24 + 5 = 418")
        )
        right = await Recompute(judge, samples=2, agree=2).verify(
            Candidate(task, "17 * 24 + 5 = 413")
        )
    assert not (wrong.ok and wrong.conclusive)  # 418 is never verified
    # whatever the programs computed, a verdict is conclusive only when two of them agree
    values = [s.answer for s in right.samples]
    assert right.conclusive == (values.count("413") >= 2)


@pytest.mark.slow
async def test_a_judge_on_its_own_context_leaves_the_runs_kv_prefix_intact(
    greedy_model: LlamaCppModel,
) -> None:
    judge = greedy_model.with_own_context(n_ctx=1024)
    conversation = [Message(role="user", content="List three colours. " * 8)]
    with anyio.fail_after(300):
        first = await greedy_model.respond(conversation, [])
        await judge.respond([Message(role="user", content="What is 2 + 2?")], [])
        conversation += [
            Message(role="assistant", content=first.content, raw=first.raw),
            Message(role="user", content="One more."),
        ]
        second = await greedy_model.respond(conversation, [])
    # only the new turn is evaluated: the judge's prompt did not overwrite the run's cache
    assert second.usage.prompt_tokens_evaluated < 20 < second.usage.prompt_tokens


async def test_one_dissenting_program_leaves_an_answer_unverified_however_many_agree() -> None:
    # The model's own mistake, written twice, against one program that gets it right: what the
    # 1.5B model did on GSM8K. A majority of one model's programs is no proof.
    writer = programs(WRONG, RIGHT, "eggs = 16\nanswer = (eggs - 3) * 2")
    with anyio.fail_after(5):
        verdict = await SelfCheck(writer).verify(ducks("She sells 16 - 3 = 13 eggs: $26."))
    assert [(s.answer, s.agrees) for s in verdict.samples] == [
        ("26", True),
        ("18", False),
        ("26", True),
    ]
    assert (verdict.ok, verdict.conclusive, verdict.feedback) == (True, False, "")


async def test_latex_arithmetic_in_the_answer_is_recomputed_like_plain_arithmetic() -> None:
    answer = r"She sells \(16 - 3 - 4 = 9\) eggs and makes \(9 \times 2 = 20\) dollars."
    with anyio.fail_after(5):
        verdict = await SelfCheck().verify(ducks(answer))
    assert [(f.claim, f.ok) for f in verdict.findings[:2]] == [
        ("16 - 3 - 4 = 9", True),
        ("9 * 2 = 20", False),
    ]
    assert not verdict.ok


async def test_programs_that_scatter_leave_the_answer_unverified_without_a_repair_round() -> None:
    writer = programs("answer = 16 * 2", "answer = (16 - 3) * 2", "answer = 16 - 7")
    with anyio.fail_after(5):
        verdict = await Recompute(writer, samples=3, agree=2).verify(ducks("The answer is 18."))
    # 32 and 26 both disagree, but no two programs agree on anything: nothing to repair toward
    assert (verdict.ok, verdict.conclusive, verdict.feedback) == (True, False, "")
    assert [s.answer for s in verdict.samples] == ["32", "26"]


# GSM8K test problem 213 (held out): the embedded 0.5B model answered the second day's count,
# called the calculator for 100 + 50 only, and both of its programs computed 150 as well
CUSTOMERS = (
    "While at the dollar store, Sloane counts 100 customers entering the store. The next day, "
    "she counts 50 more customers than the first day. If the total number of customers by the "
    "third day was 500, how many customers did she count on the third day?"
)
SECOND_DAY = "customers = 100\nsecond_day = customers + 50\nanswer = second_day"
SECOND_DAY_TOO = "print(100 + 50)"
ADDED = [
    (ToolCall(id="c0", name="calculator", arguments={"expression": "100 + 50"}), ToolResult("150"))
]


async def test_programs_that_share_the_answers_misreading_do_not_verify_it() -> None:
    writer = programs(SECOND_DAY, SECOND_DAY_TOO)
    misread = Candidate(task=CUSTOMERS, answer="The answer is 150.", evidence=ADDED)
    with anyio.fail_after(5):
        verdict = await Recompute(writer).verify(misread)
    assert [s.answer for s in verdict.samples] == ["150", "150"]  # they agree...
    assert (verdict.ok, verdict.conclusive) == (True, False)  # ...and confirm nothing
    [unused] = [f for f in verdict.findings if not f.ok]
    assert unused.claim == "task number 500"
    assert "Agreement cannot confirm" in unused.evidence


async def test_consensus_on_a_shared_misreading_does_not_verify_it() -> None:
    async def second_day(task: str, seed: int) -> str:
        return "The answer is 150."

    misread = Candidate(task=CUSTOMERS, answer="The answer is 150.", evidence=ADDED)
    with anyio.fail_after(5):
        verdict = await Consensus(second_day, samples=3).verify(misread)
    assert (verdict.ok, verdict.conclusive) == (True, False)
    assert [f.claim for f in verdict.findings if not f.ok] == ["task number 500"]


async def test_a_run_whose_working_leaves_out_a_task_number_ends_unverified() -> None:
    agent = ScriptedModel(
        [calls(("calculator", {"expression": "100 + 50"})), answer("The answer is 150.")]
    )
    with anyio.fail_after(5):
        result = await run(
            CUSTOMERS,
            model=agent,
            toolsets=[FunctionToolset([calculator])],
            verifier=Recompute(programs(SECOND_DAY, SECOND_DAY_TOO)),
        )
    assert (result.answer, result.verified) == ("The answer is 150.", False)
    right = "100 + 50 = 150 on the second day, so 500 - 100 - 150 = 250 on the third day."
    third_day = "first = 100\nsecond = first + 50\nanswer = 500 - first - second"
    agent = ScriptedModel([answer(right)])
    with anyio.fail_after(5):
        result = await run(
            CUSTOMERS, model=agent, verifier=Recompute(programs(third_day, "print(500 - 250)"))
        )
    assert result.verified is True


async def test_an_earlier_rejected_answer_does_not_lend_its_working_to_the_next_one() -> None:
    earlier = "500 - 100 - 150 = 250, so the answer is 250."
    messages = [
        Message(role="user", content=CUSTOMERS),
        Message(role="assistant", content=earlier),
        Message(role="user", content="Verification did not confirm your answer: ..."),
        Message(role="assistant", content="The answer is 150."),
    ]
    misread = Candidate(
        task=CUSTOMERS, answer="The answer is 150.", evidence=ADDED, messages=messages
    )
    with anyio.fail_after(5):
        verdict = await Recompute(programs(SECOND_DAY, SECOND_DAY_TOO)).verify(misread)
    assert (verdict.ok, verdict.conclusive) == (True, False)
    assert [f.claim for f in verdict.findings if not f.ok] == ["task number 500"]
