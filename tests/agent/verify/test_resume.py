"""Resuming an answer at its first wrong result: where the cut falls, and that right working is
never cut.

Texts marked "model output" are verbatim working of the demo 1.5B model on GSM8K (bench/verify.py).
"""

from __future__ import annotations

import pytest

from tests.agent.verify.test_equations import CHAINS_THAT_HOLD, planted_slips, worked_solutions
from verity.verify._equations import NUMBER
from verity.verify._resume import resume_point

# model output (GSM8K 11): told the sum was wrong, the model wrote the whole answer again, 794
SUM_SLIP = (
    "4. Add up all the costs to get the total cost:\n"
    "   - Total cost: \\(204 + 160 + 330 = 794\\) dollars\n\n"
    "The answer is \\(\\boxed{794}\\)."
)


def test_a_wrong_result_is_cut_and_given_the_calculators_value() -> None:
    assert resume_point(SUM_SLIP) == (
        "4. Add up all the costs to get the total cost:\n   - Total cost: \\(204 + 160 + 330 = 694"
    )


def test_the_answer_resumes_at_the_first_wrong_link_of_a_chain() -> None:
    text = "Left: 180 - 0.30 * 180 = 180 - 64 = 116 downloads, then 116 + 5 = 121."
    assert resume_point(text) == "Left: 180 - 0.30 * 180 = 126"


def test_the_value_keeps_the_grouping_the_model_wrote() -> None:
    text = "Yearly: 2100 * 52 = 112,200, so 112,200 + 5,000 = 117,200"
    assert resume_point(text) == "Yearly: 2100 * 52 = 109,200"


def test_latex_products_and_fractions_are_placed_in_the_text_as_written() -> None:
    assert resume_point(r"\(3 \times 68 = 214\) dollars") == r"\(3 \times 68 = 204"
    assert resume_point(r"\frac{20}{4} = 6 hours") == r"\frac{20}{4} = 5"


@pytest.mark.parametrize("text", [*CHAINS_THAT_HOLD, "There are 12 eggs.", ""])
def test_right_working_is_never_cut(text: str) -> None:
    assert resume_point(text) is None


def test_a_share_multiplied_by_100_percent_is_written_in_percent() -> None:
    assert resume_point("32 / 96 * 100% = 30 percent") == "32 / 96 * 100% = 33.333333"


def test_a_wrong_percentage_is_left_to_the_feedback() -> None:
    # 40% may be a share or a count of hundredths: which value to write is not certain
    assert resume_point("the chance is 3 / 6 = 40%, so 40% of 10 = 4") is None


def test_no_right_human_solution_is_cut() -> None:
    assert [s for _, s in worked_solutions() if resume_point(s) is not None] == []


def test_a_slip_planted_in_a_human_solution_is_cut_there_with_the_true_value() -> None:
    slips = planted_slips()
    exact = 0
    for slip in slips:
        point = resume_point(slip.text)
        if point is None:
            continue
        cut = _cut(slip.text, point)
        # never before the slip: right working is kept as written...
        assert slip.text[:cut] == point[:cut] and cut >= slip.at, (slip.text, point)
        written = point[slip.at :].replace(",", "")
        # ...and mostly cut at the slip itself; otherwise the slip was an operand of a later step
        # (`x = 220 + 23` in algebra the checks do not read), and that step is the one corrected:
        # `221 + 23 - 80 = 164`
        exact += cut == slip.at and abs(float(written) - slip.value) < 1e-6
    assert len(slips) > 1000
    assert exact / len(slips) > 0.7


def _cut(text: str, point: str) -> int:
    """Where `point` leaves `text`: the start of the number it writes in place of the text's."""
    return max(
        m.start()
        for m in NUMBER.finditer(text)
        if point.startswith(text[: m.start()]) and NUMBER.fullmatch(point[m.start() :])
    )
