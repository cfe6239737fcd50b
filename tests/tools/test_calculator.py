"""The calculator: exact arithmetic, formatted results, and anything but arithmetic refused."""

from __future__ import annotations

import math
import time

import anyio
import pytest

from verity.tools.base import ToolError
from verity.tools.builtin.calculator import calculator, evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", 3),
        ("7 - 10", -3),
        ("6 * 7", 42),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** 10", 1024),
        ("2 ^ 10", 1024),
        ("2 ** 3 ** 2", 512),
        ("-3 + 5", 2),
        ("-(2 + 3)", -5),
        ("+4", 4),
        ("--4", 4),
        ("2 ** -1", 0.5),
        ("1,234,567 + 1", 1234568),
        ("6 × 7 ÷ 2", 21),
        ("abs(-4)", 4),
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2)", 3),
        ("round(2.567, 2)", 2.57),
        ("floor(2.7) + ceil(2.2)", 5),
        ("log(8, 2)", 3),
    ],
)
def test_evaluate_computes_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == expected


def test_evaluate_keeps_integer_arithmetic_exact() -> None:
    assert evaluate("10**20 + 1") == 100_000_000_000_000_000_001


def test_evaluate_computes_floats() -> None:
    assert evaluate("0.1 + 0.2") == pytest.approx(0.3)
    assert evaluate("1.5 * 4") == 6.0


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("sqrt(16)", 4.0),
        ("pi", math.pi),
        ("e", math.e),
        ("2 * pi", 2 * math.pi),
        ("sin(pi / 2)", 1.0),
        ("cos(0)", 1.0),
        ("exp(1)", math.e),
        ("log10(1000)", 3.0),
    ],
)
def test_evaluate_supports_functions_and_constants(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("1234 * 5678 + 17", "7006669"),
        ("10/4", "2.5"),
        ("10/2", "5"),
        ("1/3", "0.333333333333"),
        ("2 ** 64", "18446744073709551616"),
        ("1e20 / 1", "1e+20"),
        ("-7 / 2", "-3.5"),
    ],
)
async def test_calculator_formats_the_result_as_text(expression: str, text: str) -> None:
    with anyio.fail_after(5):
        assert await calculator.call({"expression": expression}) == text


def test_calculator_is_a_read_only_tool_taking_one_expression() -> None:
    assert calculator.spec.name == "calculator"
    assert calculator.spec.read_only is True
    assert calculator.spec.parameters["required"] == ["expression"]
    assert calculator.spec.parameters["properties"]["expression"]["type"] == "string"


def test_evaluate_rejects_an_empty_expression() -> None:
    with pytest.raises(ToolError) as info:
        evaluate("   ")
    assert str(info.value) == "The expression is empty. Pass arithmetic such as '12 * (3 + 4)'."


def test_evaluate_names_the_unsupported_syntax_and_what_is_allowed() -> None:
    with pytest.raises(ToolError) as info:
        evaluate("__import__('os')")
    assert str(info.value) == (
        "Unsupported syntax \"__import__('os')\". Allowed: numbers, + - * / // % ** ^, "
        "parentheses, pi, e and the functions abs, ceil, cos, exp, floor, log, log10, max, "
        "min, round, sin, sqrt, tan."
    )


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "os",
        "x + 1",
        "(1).__class__",
        "pi.real",
        "(lambda: 1)()",
        "[x for x in range(3)]",
        "sum(i for i in range(3))",
        "'a' * 3",
        "True + 1",
        "not 1",
        "~1",
        "1 < 2",
        "1 if 1 else 2",
        "[1, 2]",
        "sqrt(x=4)",
        "max(*[1, 2])",
        "pi(1)",
        "open('/etc/passwd')",
        "x := 1",
        "1; 2",
        "import os",
    ],
)
def test_evaluate_rejects_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ToolError):
        evaluate(expression)


def test_evaluate_rejects_a_huge_exponent() -> None:
    with pytest.raises(ToolError) as info:
        evaluate("2**100000")
    assert str(info.value) == "Exponent 100000 is too large (limit 10000)."


def test_evaluate_allows_a_huge_exponent_when_the_base_cannot_grow() -> None:
    assert evaluate("1 ** 100000") == 1
    assert evaluate("(-1) ** 100001") == -1


def test_evaluate_rejects_results_over_the_digit_limit() -> None:
    assert evaluate("10 ** 999") == 10**999  # 1000 digits, the limit
    with pytest.raises(ToolError) as info:
        evaluate("10 ** 1000")
    assert str(info.value) == "The result has more than 1000 digits."
    for expression in ["10 ** 999 * 10", "10 ** 999 + 9 * 10 ** 999", "-(10 ** 999) * 10"]:
        with pytest.raises(ToolError):
            evaluate(expression)


def test_evaluate_rejects_a_huge_power_before_computing_it() -> None:
    # computing this power took about 6 s before its size was estimated up front; a sync
    # evaluation cannot be interrupted, so the elapsed time is the only bound to assert
    started = time.monotonic()
    with pytest.raises(ToolError):
        evaluate("(10 ** 999) ** 10000")
    assert time.monotonic() - started < 1


async def test_calculator_rejects_rounding_to_a_huge_number_of_digits() -> None:
    # int.__round__(-10**9) would build 10**(10**9) before answering
    with anyio.fail_after(5), pytest.raises(ToolError) as info:
        await calculator.call({"expression": "round(1, -10 ** 9)"})
    assert str(info.value) == "round() accepts at most 1000 digits."


def test_evaluate_reports_division_by_zero() -> None:
    with pytest.raises(ToolError) as info:
        evaluate("1 / (2 - 2)")
    assert str(info.value) == "Division by zero in '1 / (2 - 2)'."
    for expression in ["1 // 0", "1 % 0", "1.5 / 0"]:
        with pytest.raises(ToolError, match="Division by zero"):
            evaluate(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "sqrt(-1)",
        "log(0)",
        "exp(1000)",
        "10 ** 999 / 3.0",
        "(-8) ** (1 / 3)",
        "sqrt(1, 2)",
        "max(1)",
        "1 +",
        "2 ** 0.5 ** -2000",
    ],
)
def test_evaluate_turns_math_failures_into_tool_errors(expression: str) -> None:
    with pytest.raises(ToolError):
        evaluate(expression)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2^3^2", 512),  # a power, from the right: 2^(3^2), never xor
        ("2^3*2", 16),  # and tighter than *
        ("-2^2", -4),
        ("max(2,500,3)", 500),  # commas between arguments never group thousands
        ("max(2, 1,500)", 500),
        ("(1,234 + 1) * 2", 2470),  # outside a call they do
        ("+".join(["1"] * 1000), 1000),  # 1000 terms nest 1000 deep: no recursion limit
        ("*".join(["1"] * 1000), 1),
        ("-" * 1990 + "1", 1),
    ],
)
def test_evaluate_reads_powers_arguments_and_long_sums_as_written(
    expression: str, expected: int
) -> None:
    assert evaluate(expression) == expected


@pytest.mark.parametrize("expression", ["1e308*10", "1e999", "-1e308 * 10", "2.0 ** 1023 * 2"])
def test_a_float_overflow_is_an_error_not_inf(expression: str) -> None:
    with pytest.raises(ToolError) as info:
        evaluate(expression)
    assert str(info.value) == (
        "The result is too large for a floating-point number (it overflows to infinity). "
        "Use integers for exact large results, e.g. 10**308 * 10."
    )


def test_evaluate_rejects_an_overlong_expression() -> None:
    with pytest.raises(ToolError):
        evaluate("1 + " * 600 + "1")
