"""Where an answer's arithmetic first goes wrong, as a beginning for the model to go on from.

A small model told that `204 + 160 + 330 = 794` is wrong writes its whole answer again and
repeats the slip (Qwen2.5-Coder-1.5B on GSM8K did so in every round). Cut at the wrong result
and given the calculator's value instead, the same model goes on from there with the right
number: what GSM8K's calculator annotations do while a solution is sampled (Cobbe et al., 2021).
"""

from __future__ import annotations

from verity.verify._claims import numbers_in, plain
from verity.verify._equations import NUMBER, checked_links

__all__ = ["resume_point"]

_DECIMALS_WRITTEN = 6


def resume_point(answer: str) -> str | None:
    """`answer` up to the result of its first wrong calculation, that result replaced by the
    calculator's value: `... 204 + 160 + 330 = 694`.

    None when every calculation holds, or when the wrong result cannot be placed in the text
    for certain (a percentage, or numbers that LaTeX rewriting does not keep in step).
    """
    read = plain(answer)
    wrong = next((link for link in checked_links(read) if not link.holds), None)
    if wrong is None or wrong.right.rstrip(")").endswith("%"):
        return None
    index = wrong.right_number
    in_read = list(NUMBER.finditer(read))
    in_answer = list(NUMBER.finditer(answer))
    if index >= len(in_read) or len(in_read) != len(in_answer):
        return None
    there = in_answer[index]
    if numbers_in(in_read[index].group()) != numbers_in(there.group()):
        return None  # not the same number: the texts are out of step
    # the reading the model meant: `32 / 96 * 100% = 30` is off in percent, not in fractions
    value = min(wrong.left_readings, key=lambda reading: abs(reading - wrong.right_value))
    return answer[: there.start()] + _written(value, grouped="," in there.group())


def _written(value: float, *, grouped: bool) -> str:
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}" if grouped else str(round(value))
    text = f"{value:,.{_DECIMALS_WRITTEN}f}" if grouped else f"{value:.{_DECIMALS_WRITTEN}f}"
    return text.rstrip("0").rstrip(".")
