"""`\\boxed{}` answers: the value a reasoning model was asked to box."""

from __future__ import annotations

import pytest

from verity import extract_boxed


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r"So the total is \boxed{42}.", "42"),
        (r"Half of it: \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"First \boxed{3}, then corrected: \boxed{ 4 }", "4"),
        (r"The set is \boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\fbox{x^{2}}", "x^{2}"),
        (r"\boxed {7}", "7"),
        (r"\boxed{\boxed{3}}", r"\boxed{3}"),
        (r"It is \boxed{12}; you asked for \boxed{}.", "12"),
    ],
)
def test_extract_boxed_returns_the_last_box_with_nested_braces(text: str, value: str) -> None:
    assert extract_boxed(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "The answer is 42.",
        r"Put the answer in \boxed{}.",
        r"\boxed{\frac{1}{2}",
        r"\boxed{3} and then \boxed{4",
        r"\boxedvalue{5}",
    ],
)
def test_extract_boxed_is_none_without_a_complete_box(text: str) -> None:
    assert extract_boxed(text) is None
