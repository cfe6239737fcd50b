"""The arithmetic written in an answer: chains such as `a op b = c op d = e`, each link checked.

Small models write their working as chains (`180 - 0.30 * 180 = 180 - 54 = 126`), in LaTeX
(`\\frac{20}{3} \\approx 6.67`) and with units (`$20/hour * 35 hours = $700`). A link is read
only where it is plainly arithmetic: a chain that runs into a variable (`\\frac{x}{3} - 1 = 5`)
loses the segment that touches it, so a verifier never calls right algebra wrong arithmetic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from verity.tools.base import ToolError
from verity.tools.builtin.calculator import evaluate

__all__ = ["Link", "close_enough", "links", "without_units"]

_OPERAND = r"\(*-?\$?(?:\d(?:,?\d)*(?:\.\d+)?|\.\d+)%?\)*"
_OPERATOR = r"\s*[-+*/×x÷^−–]\s*"
_EXPRESSION = rf"{_OPERAND}(?:{_OPERATOR}{_OPERAND})*"
_LONE_PERCENTAGE = re.compile(r"\(*-?\$?(?:\d(?:,?\d)*(?:\.\d+)?|\.\d+)%\)*")
_RELATION = r"\s*(=|≈|\\approx)\s*"
_CHAIN = re.compile(rf"(?<![\w.$]){_EXPRESSION}(?:{_RELATION}{_EXPRESSION})+")
_HAS_OPERATOR = re.compile(r"\d[\s)%]*[-+*/×x÷^−–][\s(]*-?\$?\d")
_DECIMALS = re.compile(r"\.(\d+)\s*$")
_CONTINUES_BEFORE = re.compile(r"(?:[-+*/×x÷^({}\\\d−–]|\d%?\s+of|%)$")
"""Text before a chain that makes its first segment part of something larger: `x/3`, `20% of`,
a mixed number `3 1/2`, a product `1/2 (68)`, digits grouped by spaces `$350 000`."""
_CONTINUES_AFTER = re.compile(r"^(?:[\w(^]|\s*[-+*/×÷−–]\s*[A-Za-z(\\]|[ \t]+\d)")
"""Text after a chain that makes its last segment part of something larger: `6x`, `5 - y`,
`= 3 1/2`."""

_PER_UNIT = re.compile(r"(?<=[\w%])\s*/\s*[A-Za-z]{2,}\b")
_UNIT_WORDS = re.compile(r"(\d%?)(?:\s+[A-Za-z]{2,}\.?){1,3}(?=\s*(?:[-+*/×÷=≈]|x\s|\\approx))")


@dataclass(frozen=True)
class Link:
    """One `left = right` of a chain, both sides recomputed by the calculator."""

    left: str
    right: str
    left_value: float
    right_value: float
    approximate: bool
    """Written with ≈: the right side may be rounded to the decimals it shows."""
    right_start: int = -1
    """Where the right side starts in the text that was read."""

    @property
    def holds(self) -> bool:
        # "3 / 6 = 50%" and "12 / 20 * 100 = 60%": a lone percentage is read both ways
        lefts = _readings(self.left, self.left_value)
        rights = _readings(self.right, self.right_value)
        if any(close_enough(a, b) for a in lefts for b in rights):
            return True
        if not self.approximate:
            return False
        decimals = _DECIMALS.search(self.right)
        tolerance = 0.5 * 10.0 ** -(len(decimals.group(1)) if decimals else 0) + 1e-9
        return any(abs(a - b) <= tolerance for a in lefts for b in rights)

    @property
    def right_is_arithmetic(self) -> bool:
        return bool(_HAS_OPERATOR.search(self.right))

    @property
    def text(self) -> str:
        return f"{self.left} {'≈' if self.approximate else '='} {self.right}"


def links(text: str) -> list[Link]:
    """Every link of every arithmetic chain in `text` with an operation on at least one side
    (`x = 18` is no claim), in order; segments the calculator cannot read are left out."""
    found: list[Link] = []
    for match in _CHAIN.finditer(text):
        parts = re.split(_RELATION, match.group())
        segments, relations = parts[::2], parts[1::2]
        starts = _segment_starts(match, segments)
        first, last = 0, len(segments) - 1
        if _CONTINUES_BEFORE.search(text[: match.start()].rstrip()):
            first += 1
        if _CONTINUES_AFTER.search(text[match.end() :]):
            last -= 1
        for index in range(first, last):
            left, right = segments[index].strip(), segments[index + 1].strip()
            if not (_HAS_OPERATOR.search(left) or _HAS_OPERATOR.search(right)):
                continue
            left_value, right_value = _value(left), _value(right)
            if left_value is None or right_value is None:
                continue
            approximate = relations[index] != "="
            found.append(Link(left, right, left_value, right_value, approximate, starts[index + 1]))
    return found


def _segment_starts(match: re.Match[str], segments: list[str]) -> list[int]:
    """Where each segment's text (stripped) starts in the text `match` was found in."""
    starts, position = [], match.start()
    for segment in segments:
        position = match.string.index(segment, position)
        starts.append(position + len(segment) - len(segment.lstrip()))
        position += len(segment)
    return starts


def without_units(text: str) -> str:
    """`text` with units between numbers and operators taken out (`$20/hour * 35 hours = $700`
    reads `$20 * 35 = $700`). Only for tracing numbers through right arithmetic: a unit-mixing
    sentence (`20 minutes + 1 hour`) read this way must never be called a wrong calculation."""
    return _UNIT_WORDS.sub(r"\1", _PER_UNIT.sub("", text))


def _readings(segment: str, value: float) -> list[float]:
    return [value, value * 100] if _LONE_PERCENTAGE.fullmatch(segment) else [value]


def _value(expression: str) -> float | None:
    if expression.count("(") != expression.count(")"):
        return None
    try:
        plain = expression.replace("$", "").replace("x", "*").replace("%", "/100")
        plain = plain.replace("−", "-").replace("–", "-")
        value = float(evaluate(plain))
    except (ToolError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def close_enough(a: float, b: float) -> bool:
    """`a` and `b` name one quantity: equal to 1 part in 10⁴, or `b` is `a` rounded to cents."""
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) or (
        # a rounded result ($3.33 for 10/3) still names the number it came from
        abs(b) >= 0.01 and abs(a - b) < 0.005 + 1e-9
    )
