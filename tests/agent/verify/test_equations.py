"""Reading the arithmetic in answers: chains, LaTeX, units, algebra and list numbering.

The texts marked "model output" are verbatim working of the demo 1.5B model on GSM8K problems
(bench/verify.py); each one was misread by the earlier single-equation pattern.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from verity.verify._claims import arithmetic_claims, plain
from verity.verify._equations import links, without_units
from verity.verify._word_problems import untraced_numbers

CHAINS_THAT_HOLD = [
    # model output: the chain was read as "180 - 0.30 * 180 = 180" and called wrong
    r"\text{Downloads in the third month} = 180 - 0.30 \times 180 = 180 - 54 = 126",
    # model output
    r"\[ \text{New value} = 80,000 + (80,000 \times 0.150) = 80,000 + 12,000 = 92,000 \]",
    # model output
    r"3. **Expected Price**: \(5,000 \times (1 + 0.025) = 5,000 \times 1.025 = 5,125\)",
    # model output: \frac and \approx
    r"\text{Water in orange drink} = \frac{2}{3} \times 10 = \frac{20}{3} "
    r"\approx 6.67 \text{ liters}",
    "3 x 4 = 12 apples, and 2^3 = 8",
    # model output: "60% of" belongs to the chain's first segment, which is left out
    r"\[ 60\% \text{ of } \$5 = 0.60 \times \$5 = \$3 \]",
    # model output
    r"\[ 20\% \text{ of } 20 = 0.20 \times 20 = 4 \]",
    # model output, and a person's: a percentage written either way
    r"\[ \frac{12}{20} \times 100 = 60\% \]",
    "the chances of rolling one of them are 3 / 6 = 50%.",
]


@pytest.mark.parametrize("text", CHAINS_THAT_HOLD)
def test_every_link_of_a_right_chain_holds(text: str) -> None:
    claims = arithmetic_claims(text)
    assert claims, "the chain was not read at all"
    assert [c.claim for c in claims if not c.ok] == []


def test_a_chain_is_checked_link_by_link() -> None:
    claims = arithmetic_claims(r"\(3 \times 4 = 12 + 1 = 14\)")
    assert [(c.claim, c.ok, c.evidence) for c in claims] == [
        ("3 * 4 = 12 + 1", False, "wrong: the calculator gives 3 * 4 = 12 and 12 + 1 = 13"),
        ("12 + 1 = 14", False, "wrong: the calculator gives 12 + 1 = 13"),
    ]


def test_a_real_slip_is_still_caught() -> None:
    # model output: the one wrong calculation among the chains above
    claims = arithmetic_claims(r"   - Total cost: \(204 + 160 + 330 = 794\) dollars")
    assert [(c.claim, c.ok, c.evidence) for c in claims] == [
        ("204 + 160 + 330 = 794", False, "wrong: the calculator gives 204 + 160 + 330 = 694")
    ]


@pytest.mark.parametrize(
    ("text", "holds"),
    [(r"\frac{20}{3} \approx 6.67", True), (r"\frac{17}{\$8.50} \approx 2.03", False)],
)
def test_an_approximation_may_round_to_the_places_it_shows_and_no_further(
    text: str, holds: bool
) -> None:
    assert [link.holds for link in links(plain(text))] == [holds]


@pytest.mark.parametrize(
    "text",
    [
        # model output: algebra, not arithmetic; "3 - 1 = 5" and "(3) = 6" are not claims
        r"\[ \frac{x}{3} - 1 = 5 \] so \[ \frac{x}{3} = 6 \]",
        r"\( x - \frac{x}{3} = \frac{2x}{3} \) and \( \frac{2x}{3} - 2 = 10 \)",
        "2x + 3 = 7",
        "3 + 4 = 7 - y",
        "20% of 50 + 5 = 15",
        "x = 18",
    ],
)
def test_a_chain_that_runs_into_a_variable_is_not_read_as_arithmetic(text: str) -> None:
    assert arithmetic_claims(text) == []


def test_two_units_of_one_kind_are_never_read_as_plain_arithmetic() -> None:
    mixed = "It takes 20 minutes + 1 hour = 80 minutes."
    assert arithmetic_claims(mixed) == []
    # read without its units it would be wrong
    assert links(without_units(mixed))[0].holds is False


SLIPS_WITH_UNITS = [
    # model output (GSM8K 8, the 1.5B): 395 miles
    "   - Total distance = 60 miles + 15 miles + 320 miles = 495 miles.",
    # people's working (GSM8K), with a slip planted
    "Artie sells 17 begonias x $2 = $35",
    "First find the total lost revenue: $35/hour * 3 hours = $106",
    "Altogether, there are 96 apples + 72 bananas = 169 fruits",
]


@pytest.mark.parametrize("text", SLIPS_WITH_UNITS)
def test_a_slip_written_with_units_is_caught(text: str) -> None:
    assert [c.ok for c in arithmetic_claims(text)] == [False]


UNITS_THAT_HIDE_A_FACTOR = [
    "She bought 1 dozen * 3 = 36 eggs.",  # a number word: the 12 is not written
    "The path is 1 mile + 20 feet = 5300 feet",  # a mile is 5280 feet
    "That is 3 weeks + 2 = 23 days",  # a week is 7 days
    # model output: a number of a label (`in 3 years`), its unit taken out, is no operand
    r"\text{Zack's age in 3 years} = 42 + 3 = 45",
]


@pytest.mark.parametrize("text", UNITS_THAT_HIDE_A_FACTOR)
def test_units_that_may_hide_a_factor_are_not_read_through(text: str) -> None:
    assert [c.claim for c in arithmetic_claims(text) if not c.ok] == []


JILL = (
    "Jill gets paid $20 per hour to teach and $30 to be a cheerleading coach. If she works 50 "
    "weeks a year, 35 hours a week as a teacher and 15 hours a week as a coach, what's her "
    "annual salary?"
)
# model output
JILL_ANSWER = """\
- Therefore, her weekly earnings from teaching = $20/hour * 35 hours/week = $700/week.
- Therefore, her weekly earnings from cheerleading coaching = $30/hour * 15 hours/week = $450/week.
- Total weekly earnings = $700/week + $450/week = $1150/week.
- Therefore, her annual salary = $1150/week * 50 weeks/year = $57500/year.

The answer is \\boxed{57500}."""


def test_numbers_are_traced_through_right_arithmetic_written_with_units() -> None:
    assert untraced_numbers(JILL_ANSWER, task=JILL, evidence=[]) == []


def test_a_made_up_number_with_units_still_has_no_source() -> None:
    made_up = JILL_ANSWER.replace("$1150/week * 50 weeks/year = $57500", "$1150/week * 50 = $60000")
    made_up = made_up.replace("boxed{57500}", "boxed{60000}")
    assert [f.claim for f in untraced_numbers(made_up, task=JILL, evidence=[])] == [
        "the number 60000"
    ]


def test_list_numbering_is_not_a_quantity() -> None:
    task = "A box holds 3 pens. How many pens are in 2 boxes?"
    answer = "1. One box holds 3 pens.\n2. Two boxes:\n8. So 2 * 3 = 6 pens.\nStep 9: done."
    assert untraced_numbers(answer, task=task, evidence=[]) == []
    answer_with_a_number = answer.replace("done.", "41 pens.")
    assert [f.claim for f in untraced_numbers(answer_with_a_number, task=task, evidence=[])] == [
        "the number 41"
    ]


def test_what_a_percentage_leaves_is_one_step_from_it() -> None:
    task = "After a 25% discount Kyle paid $19.50 for a book. What was the original price?"
    # model output (shortened): 0.75 is what the 25% discount leaves
    answer = r"he paid 75% of the original price: \[ 19.50 = 0.75P \] \[ P = 26 \]"
    assert untraced_numbers(answer, task=task, evidence=[], known=[26.0]) == []
    other = answer.replace("0.75", "0.85")
    assert [f.claim for f in untraced_numbers(other, task=task, evidence=[], known=[26.0])] == [
        "the number 0.85"
    ]


GSM8K = Path(__file__).resolve().parents[3].parent / "shared" / "bench" / "gsm8k"
_RESULT = re.compile(r"=\s*\$?(\d[\d,]*(?:\.\d+)?)")


def worked_solutions() -> list[tuple[str, str]]:
    """GSM8K's own worked solutions (written by people, every step right), with the task."""
    files = sorted(GSM8K.glob("*.jsonl")) if GSM8K.is_dir() else []
    if not files:
        pytest.skip(f"GSM8K is not at {GSM8K}")
    rows = [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]
    # `<<16-3-4=9>>` is the dataset's own calculator annotation, not part of the prose
    return [
        (row["question"], re.sub(r"<<[^>]*>>", "", row["answer"]).split("####")[0]) for row in rows
    ]


def test_no_step_of_a_right_human_solution_is_called_wrong() -> None:
    solutions = worked_solutions()
    read = [arithmetic_claims(solution) for _, solution in solutions]
    assert sum(len(claims) for claims in read) > 2 * len(solutions)  # the steps are read...
    called_wrong = [c.claim for claims in read for c in claims if not c.ok]
    assert called_wrong == []  # ...and none is called wrong (the single pattern: 13 solutions)


@dataclass(frozen=True)
class PlantedSlip:
    """A worked solution with one result after `=` changed: where, and what it was."""

    text: str
    at: int
    """Where the changed result starts."""
    value: float
    """The right result."""


def planted_slips() -> list[PlantedSlip]:
    """One slip after every `=` of GSM8K's worked solutions, one at a time."""
    slips = []
    for _, solution in worked_solutions():
        for match in _RESULT.finditer(solution):
            value = float(match.group(1).replace(",", ""))
            slip = f"{value + 1:g}" if value < 1000 else str(int(value * 10))
            text = solution[: match.start(1)] + slip + solution[match.end(1) :]
            slips.append(PlantedSlip(text, match.start(1), value))
    return slips


def test_a_slip_planted_in_a_human_solution_is_caught() -> None:
    slips = planted_slips()
    caught = sum(any(not c.ok for c in arithmetic_claims(slip.text)) for slip in slips)
    planted = len(slips)
    assert planted > 1000
    # 88.8% (77.7% before steps written with units were read); the rest are in prose the checks
    # do not read, or in units that may hide a factor
    assert caught / planted > 0.85


def test_most_numbers_of_right_human_solutions_trace_to_their_task() -> None:
    solutions = worked_solutions()
    untraced = [s for task, s in solutions if untraced_numbers(s, task=task, evidence=[])]
    # 22 of 300: algebra (x = 40), implicit products (4(100)), digits grouped by spaces
    assert len(untraced) <= 0.1 * len(solutions)
