"""Do two answers say the same thing? Final numbers compared as numbers, the rest by math-verify.

A final answer is the content of the last `\\boxed{}`, else the number after the last "answer",
else the last number (`normalise_answer`). Two numbers agree when they are equal or one is the
other rounded to cents ($3.33 for 10/3). Anything else (fractions, expressions, sets) goes to
Hugging Face's math-verify, which knows `\\frac{1}{2}` equals `0.5`; its sympy parsing is bounded
by its own timeout in the main thread and by the answer's length everywhere.
"""

from __future__ import annotations

import math
import threading

from verity.verify._claims import normalise_answer, numbers_in

__all__ = ["final_value", "same_answer", "same_number"]

_MAX_SYMBOLIC_CHARS = 200
"""Longer answers are compared as text: sympy's parser is unbounded without its timeout."""


def final_value(answer: str) -> float | None:
    """The answer's final value as a number, or None when it is not a plain number."""
    final = normalise_answer(answer)
    numbers = numbers_in(final)
    if len(numbers) == 1 and final.replace(",", "").lstrip("-").replace(".", "", 1).isdigit():
        return numbers[0]
    return None


def same_number(a: float, b: float) -> bool:
    """Equal, or equal once the one with more decimals is rounded to cents."""
    if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
        return True
    return abs(a - b) < 0.005 + 1e-9 and max(abs(a), abs(b)) >= 0.01


def same_answer(a: str, b: str) -> bool:
    """Whether answers `a` and `b` reach the same final answer; False when either has none."""
    first, second = normalise_answer(a), normalise_answer(b)
    if not first or not second:
        return False
    x, y = final_value(a), final_value(b)
    if x is not None and y is not None:
        return same_number(x, y)
    if first == second:
        return True
    if max(len(first), len(second)) > _MAX_SYMBOLIC_CHARS:
        return False
    return _math_verify(first, second)


def _math_verify(first: str, second: str) -> bool:
    from math_verify import parse, verify  # sympy: imported only when a symbolic answer needs it

    # math-verify's timeouts use SIGALRM, which exists only in the main thread
    limit = 5 if threading.current_thread() is threading.main_thread() else None
    gold = parse(_as_latex(first), parsing_timeout=limit)
    target = parse(_as_latex(second), parsing_timeout=limit)
    return bool(gold and target and verify(gold, target, timeout_seconds=limit))


def _as_latex(value: str) -> str:
    return value if value.startswith("$") else f"${value}$"
