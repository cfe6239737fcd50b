"""The built-in verifiers: self-check's claim checks, consensus, programmatic, composition."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.agent.verify.test_equations import worked_solutions
from verity import LlamaCppModel, RunSettings, ToolCall, TraceRecorder, TraceStore, UserError, run
from verity.messages import Finding, Sample, Verdict
from verity.solver import seeded_solver
from verity.tools.base import ToolResult
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.verify import (
    AllOf,
    AnyOf,
    Candidate,
    Consensus,
    Programmatic,
    SelfCheck,
    build_verifier,
    normalise_answer,
)
from verity.verify._word_problems import check_coverage

DUCKS = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' market "
    "daily for $2 per fresh duck egg. How much in dollars does she make every day?"
)
DUCK_EVIDENCE = [
    (ToolCall(id="c0", name="calculator", arguments={"expression": "16 - 3 - 4"}), ToolResult("9")),
    (ToolCall(id="c1", name="calculator", arguments={"expression": "9 * 2"}), ToolResult("18")),
]


def ducks(answer: str) -> Candidate:
    return Candidate(task=DUCKS, answer=answer, evidence=list(DUCK_EVIDENCE))


async def test_self_check_without_a_model_accepts_a_grounded_answer_but_never_verifies_it() -> None:
    with anyio.fail_after(5):
        verdict = await SelfCheck().verify(ducks("She makes $18 every day."))
    # nothing derived the answer again: no problem found, nothing confirmed
    assert verdict == Verdict(ok=True, verifier="self-check", conclusive=False)


async def test_self_check_rejects_a_number_no_tool_result_or_task_number_supports() -> None:
    with anyio.fail_after(5):
        verdict = await SelfCheck().verify(ducks("She makes $26 every day."))
    assert verdict.findings == [
        Finding(
            claim="the number 26",
            ok=False,
            evidence="has no source: it is in no tool result, is not a number of the task or one "
            "step of arithmetic on them, and no correct calculation gives it.",
        )
    ]
    assert verdict.feedback == (
        "Verification did not confirm your answer:\n"
        "- the number 26: has no source: it is in no tool result, is not a number of the task "
        "or one step of arithmetic on them, and no correct calculation gives it.\n"
        "Check each step of your solution against this, redo any wrong step with the calculator, "
        "and give your final answer."
    )
    assert not verdict.ok


async def test_self_check_recomputes_the_arithmetic_written_in_the_answer() -> None:
    answer = "She sells 16 - 3 - 4 = 10 eggs, so she makes 10 * 2 = $20."
    with anyio.fail_after(5):
        verdict = await SelfCheck().verify(ducks(answer))
    assert [(f.claim, f.ok, f.evidence) for f in verdict.findings[:2]] == [
        ("16 - 3 - 4 = 10", False, "wrong: the calculator gives 16 - 3 - 4 = 9"),
        ("10 * 2 = $20", True, "calculator: 10 * 2 = 20"),
    ]
    assert not verdict.ok


async def test_an_unused_task_number_is_a_hint_in_the_feedback_not_a_reason_to_reject() -> None:
    task = "Tom buys 3 shirts at $15 each and a hat for $7. How much does he spend?"
    call = ToolCall(id="c0", name="calculator", arguments={"expression": "3 * 15"})
    evidence = [(call, ToolResult("45"))]
    with anyio.fail_after(5):
        grounded = await SelfCheck().verify(Candidate(task, "He spends $45.", evidence=evidence))
        unsupported = await SelfCheck().verify(Candidate(task, "He spends $46.", evidence=evidence))
    assert grounded.ok
    assert [f.claim for f in unsupported.findings if not f.ok] == ["the number 46"]
    assert "- task number 7: The task gives this number" in unsupported.feedback


def test_a_task_number_written_as_a_word_is_a_hint_only_when_it_stands_alone() -> None:
    task = (
        "Two pairs of heels cost five dollars less than the boots. One pair costs $33, the "
        "other twice as much; twenty-five people and three hundred shoes watch. The boots?"
    )
    working = "33 * 2 = 66, and 33 + 66 = 99. The boots cost $99."
    hints = check_coverage(working, task=task, evidence=[], words=True)
    # "five" stands alone; "twenty-five" and "three hundred" are parts of other numbers
    assert [f.claim for f in hints] == ["task number 5"]
    assert check_coverage(working, task=task, evidence=[]) == []  # digits only: the gate


def test_a_number_word_before_percent_is_a_quantity_and_its_fraction_counts_as_using_it() -> None:
    task = "A $40 shirt is on sale for twenty percent off, and tax adds five percent. The price?"
    hints = check_coverage("40 * 0.8 = 32. The price is $32.", task=task, evidence=[], words=True)
    assert [f.claim for f in hints] == ["task number 5"]
    working = "40 * 0.8 = 32, 32 * 1.05 = 33.6. The price is $33.60."
    assert check_coverage(working, task=task, evidence=[], words=True) == []


def test_a_fraction_of_the_task_written_as_a_decimal_uses_both_of_its_numbers() -> None:
    task = "She invited 16 friends and 1/4 of them won't come. Each bag is 3/2 pounds."
    working = "16 x .75 = 12 guests, and 12 x 1.5 = 18. The answer is 18."
    assert check_coverage(working, task=task, evidence=[]) == []
    unused = check_coverage("16 x 1.5 = 24. The answer is 24.", task=task, evidence=[])
    assert [f.claim for f in unused] == ["task number 4"]


def test_a_percentage_change_written_as_its_multiplier_uses_the_task_s_number() -> None:
    # GSM8K's own worked solutions write "25% more than 80" as 80 x 1.25 and "up 50%" as x 1.5;
    # the gate took 25 and 50 for numbers the working left out
    task = "One guess is 80. Another is 25% more, a third 10% less. The average guess?"
    working = "80 x 1.25 = 100, 80 x 0.9 = 72, (80 + 100 + 72) / 3 = 84. The answer is 84."
    assert check_coverage(working, task=task, evidence=[]) == []
    assert [f.claim for f in check_coverage("80 x 0.9 = 72", task=task, evidence=[])] == [
        "task number 25"
    ]


def test_only_a_share_is_used_by_what_is_left_of_it() -> None:
    # 0.8 is the task's own price, not "20% off": the 20 apples are still unused
    task = "Tom buys 20 apples at $0.80 each and 3 pears at 5 percent off $2. How much?"
    working = "3 x 2 x 0.95 = 5.7, plus 0.80 = 6.5. The answer is 6.5."
    assert [f.claim for f in check_coverage(working, task=task, evidence=[])] == ["task number 20"]
    # a share of nothing or of everything is "used" by any 0, 1 or 2: it stays a plain number
    task = "Ann got 0/7 on the quiz and 9/9 on the test. How many did she get right?"
    working = "0 + 9 = 9. The answer is 9."
    assert [f.claim for f in check_coverage(working, task=task, evidence=[])] == ["task number 7"]


def test_number_words_in_gsm8k_tasks_that_people_s_working_leaves_unused_are_counted() -> None:
    solutions = worked_solutions()
    flagged = [check_coverage(s, task=t, evidence=[]) for t, s in solutions]
    with_words = [check_coverage(s, task=t, evidence=[], words=True) for t, s in solutions]
    # what `check_coverage` documents: descriptive counts ("the three girls") are never written
    # out in the working, so words are a hint for repairs, never a reason to withhold "verified"
    assert (sum(map(bool, flagged)), sum(map(bool, with_words))) == (5, 13)


async def test_self_check_runs_read_only_tools_again_and_flags_a_result_that_changed() -> None:
    call = ToolCall(id="c0", name="calculator", arguments={"expression": "9 * 2"})
    forged = (call, ToolResult("20"))
    candidate = Candidate(task=DUCKS, answer="She makes $20.", evidence=[forged])
    toolset = FunctionToolset([calculator])
    with anyio.fail_after(5):
        verdict = await SelfCheck(toolsets=[toolset]).verify(candidate)
    assert (
        Finding(
            claim='calculator(expression="9 * 2") = 20',
            ok=False,
            evidence="Called again, it gives 18.",
        )
        in verdict.findings
    )


@pytest.mark.parametrize(
    ("answer", "normalised"),
    [
        ("The answer is 18.", "18"),
        ("She makes $1,200.00 a day.", "1200"),
        ("The answer is 18 (9 * 2).", "18"),
        ("9 * 2 = 18", "18"),
        ("Blue, mostly!", "blue mostly"),
    ],
)
def test_normalise_answer_keeps_the_final_number(answer: str, normalised: str) -> None:
    assert normalise_answer(answer) == normalised


@pytest.mark.parametrize(
    ("answer", "normalised"),
    [
        (r"\boxed{18} (9 * 2, not 20)", "18"),
        (r"I first thought the answer is 17. \boxed{18}", "18"),
        (r"She makes \boxed{\$1{,}200} a day.", "1200"),
        (r"\boxed{ \dfrac{1}{2} }", r"\frac{1}{2}"),
    ],
)
def test_normalise_answer_prefers_the_boxed_value(answer: str, normalised: str) -> None:
    assert normalise_answer(answer) == normalised


def solver_of(answers: dict[int, str], seeds: list[int]):  # type: ignore[no-untyped-def]
    async def solve(task: str, seed: int) -> str:
        seeds.append(seed)
        return answers[seed]

    return solve


async def test_consensus_accepts_an_answer_most_samples_agree_with() -> None:
    seeds: list[int] = []
    consensus = Consensus(solver_of({1: "It is 18.", 2: "$20"}, seeds), samples=3)
    with anyio.fail_after(5):
        verdict = await consensus.verify(ducks("The answer is 18"))
    assert verdict == Verdict(
        ok=True,
        verifier="consensus",
        findings=[
            Finding(
                claim="final answer 18",
                ok=True,
                evidence="2 of 3 answers agree; independent attempts gave: 18 x1, 20 x1.",
            )
        ],
        confidence=2 / 3,
        samples=[
            Sample(seed=1, answer="It is 18.", normalised="18", agrees=True),
            Sample(seed=2, answer="$20", normalised="20", agrees=False),
        ],
    )
    assert seeds == [1, 2]


async def test_consensus_disagreement_is_a_finding_and_samples_are_reused_next_round() -> None:
    seeds: list[int] = []
    consensus = Consensus(solver_of({1: "20", 2: "20"}, seeds), samples=3)
    with anyio.fail_after(5):
        first = await consensus.verify(ducks("18"))
        second = await consensus.verify(ducks("20"))
    assert not first.ok
    assert first.feedback == (
        "Independent attempts at this task reached other answers (20 x2), not 18. Recheck each "
        "step with the tools and give the corrected final answer."
    )
    assert (second.ok, second.confidence) == (True, 1.0)
    assert seeds == [1, 2]


async def test_consensus_majority_threshold_is_configurable() -> None:
    consensus = Consensus(solver_of({1: "18", 2: "20", 3: "21"}, []), samples=4, majority=0.5)
    with anyio.fail_after(5):
        verdict = await consensus.verify(ducks("18"))
    assert (verdict.ok, verdict.confidence) == (False, 0.5)


async def test_a_composed_verdict_keeps_the_consensus_samples() -> None:
    consensus = Consensus(solver_of({1: "20"}, []), samples=2)
    with anyio.fail_after(5):
        verdict = await AllOf(consensus, Programmatic(lambda c: True, name="any")).verify(
            ducks("18")
        )
    assert verdict.samples == [Sample(seed=1, answer="20", normalised="20", agrees=False)]


def test_consensus_needs_two_samples() -> None:
    with pytest.raises(UserError) as caught:
        Consensus(solver_of({}, []), samples=1)
    assert caught.value.field == "verify"


async def test_programmatic_checks_may_be_async_and_return_a_whole_verdict() -> None:
    async def known_value(candidate: Candidate) -> Verdict:
        ok = normalise_answer(candidate.answer) == "18"
        return Verdict(ok=ok, feedback="" if ok else "Expected 18.")

    with anyio.fail_after(5):
        verdict = await Programmatic(known_value).verify(ducks("17"))
    assert verdict == Verdict(ok=False, verifier="known_value", feedback="Expected 18.")


async def test_all_of_stops_at_the_first_rejection_and_any_of_at_the_first_acceptance() -> None:
    called: list[str] = []

    def check(name: str, ok: bool) -> Programmatic:
        def run_check(candidate: Candidate) -> bool:
            called.append(name)
            return ok

        return Programmatic(run_check, name=name, feedback=f"{name} failed", confirms=True)

    with anyio.fail_after(5):
        every = await AllOf(check("a", True), check("b", False), check("c", True)).verify(
            ducks("18")
        )
        some = await AnyOf(check("d", False), check("e", True), check("f", False)).verify(
            ducks("18")
        )
    assert called == ["a", "b", "d", "e"]
    assert (every.ok, every.verifier, every.feedback) == (False, "all(a,b,c)", "b failed")
    assert [f.claim for f in every.findings] == ["a: a", "b: b"]
    assert (some.ok, some.verifier, some.feedback) == (True, "any(d,e,f)", "")


def test_verify_specs_build_the_named_verifiers(greedy_free_model: None = None) -> None:
    async def solve(task: str, seed: int) -> str:
        return ""

    model = FakeName()
    assert build_verifier("none", model=model) is None  # type: ignore[arg-type]
    self_check = build_verifier("self", model=model)  # type: ignore[arg-type]
    assert isinstance(self_check, SelfCheck)
    consensus = build_verifier("consensus:5:0.6", model=model, solve=solve)  # type: ignore[arg-type]
    assert isinstance(consensus, Consensus)
    assert (consensus.samples, consensus.majority) == (5, 0.6)
    both = build_verifier("all:self,consensus:3", model=model, solve=solve)  # type: ignore[arg-type]
    assert isinstance(both, AllOf)
    assert both.name == "all(self-check,consensus)"


def test_an_unknown_verify_spec_is_a_user_error_that_lists_the_choices() -> None:
    with pytest.raises(UserError) as caught:
        build_verifier("selfish", model=FakeName())  # type: ignore[arg-type]
    assert caught.value.message == (
        "Unknown --verify 'selfish'. Use one of: none | self[:N[:K]] | recompute[:N[:K]] | "
        "consensus:N[:MAJORITY] | all:SPEC,SPEC | any:SPEC,SPEC (e.g. 'all:self,consensus:3')."
    )
    assert caught.value.field == "verify"


class FakeName:
    """Only a name: spec parsing never calls the model."""

    name = "unused"


@pytest.mark.slow
async def test_self_check_on_the_real_model_catches_a_tool_result_contradicting_the_answer(
    greedy_model: LlamaCppModel,
) -> None:
    # The calculator said 9 eggs; the answer's reasoning claims 10 and builds on it.
    planted = ducks("She sells 16 - 3 - 4 = 10 eggs a day, so she makes 10 * 2 = $20.")
    with anyio.fail_after(120):
        verdict = await SelfCheck(greedy_model).verify(planted)
    assert not verdict.ok
    assert (
        Finding(
            claim="16 - 3 - 4 = 10", ok=False, evidence="wrong: the calculator gives 16 - 3 - 4 = 9"
        )
        in verdict.findings
    )
    assert not verdict.conclusive
    assert "16 - 3 - 4 = 10" in verdict.feedback


@pytest.mark.slow
async def test_a_self_checked_run_on_the_real_model_stores_its_verdicts_in_sqlite(
    greedy_model: LlamaCppModel, tmp_path: Path
) -> None:
    store = TraceStore(tmp_path / "t.db")
    toolset = FunctionToolset([calculator])
    with anyio.fail_after(240):
        result = await run(
            "What is 1234 * 5678?",
            model=greedy_model,
            toolsets=[toolset],
            verifier=SelfCheck(greedy_model, toolsets=[toolset]),
            settings=RunSettings(max_steps=4, max_verify_rounds=1),
            hooks=TraceRecorder(store),
        )
    if "7006652" not in result.answer.replace(",", ""):
        assert not result.verified  # a wrong product is never marked verified
    record = store.run(result.run_id)
    assert record is not None
    [row] = record["verdicts"]
    assert (row["verifier"], row["scope"], row["checked"]) == ("self-check", "answer", 1)
    assert row["ok"] or not result.verified  # verified needs an accepting verdict
    findings = [Finding.model_validate(f) for f in json.loads(row["findings"])]
    code_checks_hold = all(f.ok for f in findings if not f.claim.startswith("model: "))
    assert code_checks_hold or not row["ok"]  # a failed code check always rejects
    store.close()


@pytest.mark.slow
async def test_consensus_on_the_real_model_samples_other_seeds_of_the_same_weights(
    greedy_model: LlamaCppModel,
) -> None:
    toolset = FunctionToolset([calculator])
    solve = seeded_solver(
        lambda seed: greedy_model.with_sampling(seed=seed, temperature=0.7),
        toolsets=[toolset],
        settings=RunSettings(max_steps=3),
    )
    consensus = Consensus(solve, samples=3)
    candidate = Candidate(task="What is 12 * 12? Use the calculator.", answer="The answer is 150.")
    with anyio.fail_after(240):
        async with toolset:
            verdict = await consensus.verify(candidate)
    assert not verdict.ok
    assert verdict.findings[0].claim == "final answer 150"
    assert "144" in verdict.findings[0].evidence


async def test_a_filtering_check_that_passes_does_not_make_an_answer_verified() -> None:
    has_number = Programmatic(lambda c: any(ch.isdigit() for ch in c.answer), name="has_number")
    known = Programmatic(lambda c: normalise_answer(c.answer) == "18", name="known", confirms=True)
    with anyio.fail_after(5):
        filtered = await has_number.verify(ducks("She makes $26."))
        confirmed = await known.verify(ducks("She makes $18."))
        both = await AllOf(has_number, SelfCheck()).verify(ducks("She makes $18."))
    assert (filtered.ok, filtered.conclusive) == (True, False)
    assert (confirmed.ok, confirmed.conclusive) == (True, True)
    # every check passed, none confirmed: accepted, not verified
    assert (both.ok, both.conclusive) == (True, False)
