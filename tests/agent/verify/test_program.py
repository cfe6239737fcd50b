"""Programs a verifier has the model write: straight-line arithmetic runs, anything else never."""

from __future__ import annotations

import pytest

from verity.verify._program import ProgramError, ProgramRun, extract_code, run_program


def test_a_straight_line_program_computes_its_answer_and_names_its_values() -> None:
    source = "eggs = 16\neaten = 3 + 4\nleft = eggs - eaten\nanswer = left * 2\n"
    assert run_program(source) == ProgramRun(
        value=18, names={"eggs": 16, "eaten": 7, "left": 9, "answer": 18}
    )


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("def solution():\n    a = 7\n    return a * 6\n", 42),  # defined, never called
        ("def solution():\n    return 10 / 4\n\nprint(solution())\n", 2.5),
        ("import math\nx = math.ceil(7 / 2)\nprint(x)", 4),
        ("a, b = 3, 4\na += b\ntotal = a * 2", 14),
        ('"""Docstring."""\nprice: float = 2.5\nanswer = round(price * 3, 1)', 7.5),
        ("n = int(17 / 5)\nresult = n * 5", 15),
        ("total = 0\nfor week in range(1, 4):\n    total += week * 2\nanswer = total", 12),
        ("x = 7\nif x > 5 and not x == 6:\n    y = 1\nelse:\n    y = 2\nanswer = y", 1),
        ("t = 540\nprint(f'The answer is {t:.0f} meters')", 540),
        ("print('Total:', 3 * 4)", 12),
        ("answer = sum([1, 2, 3.5])", 6.5),
        ("x = 4\nx * 3", 12),  # a bare expression, as in a notebook cell
    ],
)
def test_functions_prints_and_augmented_assignments_are_read(source: str, value: float) -> None:
    assert run_program(source).value == value


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import os\nos.system('echo pwned')", "unsupported statement: import os"),
        ("answer = __import__('os').system('echo pwned')", "Unsupported syntax"),
        ("answer = open('/etc/passwd').read()", "Unsupported syntax"),
        ("answer = ().__class__.__bases__", "Unsupported syntax"),
        ("for i in range(10**9):\n    answer = i", "more than 1000 statements"),
        ("for c in 'abc':\n    answer = 1", "unsupported statement: for c in 'abc'"),
        ("while True:\n    pass", "unsupported statement: while True"),
        ("if 'a' in 'abc':\n    answer = 1", "unsupported comparison"),
        ("def f():\n    return f()\nanswer = f()", "f() calls itself"),
        ("answer = 9 ** 9 ** 9", "too large"),
        ("answer = 1 / 0", "Division by zero"),
        ("answer = undefined_name * 2", "Unsupported syntax 'undefined_name'"),
        ("x = [1, 2, 3]\nanswer = x[0]", "Unsupported syntax"),
        ("answer = 'eighteen'", "Unsupported syntax"),
        ("answer = (", "does not parse"),
        ("", "computes no result"),
    ],
)
def test_anything_but_arithmetic_is_refused_never_run(source: str, problem: str) -> None:
    with pytest.raises(ProgramError) as caught:
        run_program(source)
    assert problem in str(caught.value)


def test_a_program_running_too_many_statements_is_stopped() -> None:
    source = "def f():\n    x = 1\n    return x\n" + "y = f()\n" * 400
    with pytest.raises(ProgramError) as caught:
        run_program(source)
    assert str(caught.value) == "the program runs more than 1000 statements"


def test_the_code_is_taken_from_a_fenced_block_when_the_reply_has_one() -> None:
    reply = "Here is the program:\n```python\nanswer = 2 + 2\n```\nIt prints 4."
    assert extract_code(reply) == "answer = 2 + 2"
    assert extract_code("answer = 5") == "answer = 5"
