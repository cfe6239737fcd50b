"""Numbers as an answer writes them: read (LaTeX too), normalised to compare, equations redone.

Every check here is plain code, so a small model cannot talk its way past it: an equation
written in the answer must recompute with the calculator. What a number must trace back to (the
task's quantities, a tool result) is read in `_word_problems`.
"""

from __future__ import annotations

import re

from verity.answers import extract_boxed
from verity.messages import Finding
from verity.verify._equations import NUMBER, checked_links

__all__ = ["arithmetic_claims", "format_number", "normalise_answer", "numbers_in", "plain"]

_WORDS = re.compile(r"[a-z]+")
# spaces, LaTeX spacing commands and dollar signs: `\$1{,}200` and `1200` are one answer
_LATEX_NOISE = re.compile(r"\s+|\\[,;:! ]|\\?\$|\{,\}")

_LATEX_ARITHMETIC = [
    (re.compile(r"\\d?frac\s*\{\s*([\d.]+)\s*\}\s*\{\s*([\d.]+)\s*\}"), r"\1/\2"),
    (re.compile(r"\\d?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"(\1)/(\2)"),
    (re.compile(r"\\(?:times|cdot)(?![A-Za-z])"), "*"),
    (re.compile(r"\\div(?![A-Za-z])"), "/"),
    (re.compile(r"\\(?:text|mathrm|textbf)\s*\{([^{}]*)\}"), r" \1 "),
    (re.compile(r"\\(?:left|right)(?![A-Za-z])|\\[\[\]()]"), " "),
    (re.compile(r"\\([$%])"), r"\1"),
    (re.compile(r"\\approx(?![A-Za-z])"), "≈"),
]


def plain(text: str) -> str:
    """`text` with LaTeX arithmetic written plainly: `2 \\times 3` as `2 * 3`, `\\frac{a}{b}` as
    `(a)/(b)`, `\\text{eggs}` as `eggs`: models write their working both ways."""
    for pattern, replacement in _LATEX_ARITHMETIC:
        text = pattern.sub(replacement, text)
    return text


def numbers_in(text: str) -> list[float]:
    """The numbers written in `text`, in order: `1,200` is 1200, `15%` is 15."""
    found = []
    for match in NUMBER.finditer(text):
        token = match.group().rstrip("%").replace(",", "")
        try:
            found.append(float(token))
        except ValueError:
            continue
    return found


def format_number(number: float) -> str:
    """`number` as a working writes it: `3` for 3.0, `0.25` for 0.25."""
    return str(int(number)) if number.is_integer() else f"{number:g}"


def arithmetic_claims(text: str) -> list[Finding]:
    """Recompute every link of every chain `a op b = c = ...` in `text` with the calculator; one
    finding per link."""
    findings = []
    for link in checked_links(plain(text)):
        computed = f"{link.left} = {format_number(link.left_value)}"
        if link.right_is_arithmetic:
            computed += f" and {link.right} = {format_number(link.right_value)}"
        # a refutation says so in words: small models read "calculator: ..." as a confirmation
        evidence = (
            f"calculator: {computed}" if link.holds else f"wrong: the calculator gives {computed}"
        )
        findings.append(Finding(claim=link.text, ok=link.holds, evidence=evidence))
    return findings


def normalise_answer(answer: str) -> str:
    """A comparable form of an answer: its final number (`$1,200.00` → `1200`), else its words.

    The number after the last "answer" wins over a later one, so "The answer is 18 (9 * 2)"
    gives 18. A `\\boxed{}` value wins over both: `\\boxed{18}` gives 18 and a boxed expression
    such as `\\boxed{\\frac{1}{2}}` is compared as written, without spaces.
    """
    boxed = extract_boxed(answer)
    if boxed is not None:
        return _normalise_boxed(boxed)
    lowered = answer.lower()
    after = numbers_in(lowered[lowered.rfind("answer") :]) if "answer" in lowered else []
    numbers = numbers_in(lowered)
    if after or numbers:
        return format_number(round(after[0] if after else numbers[-1], 6))
    return " ".join(_WORDS.findall(lowered))


def _normalise_boxed(value: str) -> str:
    compact = _LATEX_NOISE.sub("", value).replace("\\%", "%")
    compact = compact.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    if NUMBER.fullmatch(compact):
        return format_number(round(numbers_in(compact)[0], 6))
    return compact
