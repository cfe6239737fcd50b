"""The arithmetic written in an answer: chains such as `a op b = c op d = e`, each link checked.

Small models write their working as chains (`180 - 0.30 * 180 = 180 - 54 = 126`), in LaTeX
(`\\frac{20}{3} \\approx 6.67`) and with units (`$20/hour * 35 hours = $700`). A link is read
only where it is plainly arithmetic: a chain that runs into a variable (`\\frac{x}{3} - 1 = 5`)
loses the segment that touches it, so a verifier never calls right algebra wrong arithmetic.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass

from verity.tools.base import ToolError
from verity.tools.builtin.calculator import evaluate

__all__ = ["NUMBER", "Link", "checked_links", "close_enough", "links", "without_units"]

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

NUMBER = re.compile(r"(?<![\w.])-?\d(?:,?\d)*(?:\.\d+)?(?:[eE][+-]?\d+)?%?|(?<![\w.])-?\.\d+")
"""A number as written: `1,200`, `-3.5`, `.5`, `15%`."""
_UNIT = re.compile(r"[A-Za-z]{2,}")
_NUMBER_WORDS = frozenset(
    "dozen hundred thousand million billion trillion half third quarter pair couple score "
    "percent times twice double triple".split()
)
"""Words that are numbers themselves: read as a unit they would drop a factor."""
_UNIT_KINDS = {
    unit: kind
    for kind, units in {
        "time": "second sec minute min hour hr day week month year decade century",
        "length": "inch foot feet yard mile meter metre cm mm km centimeter millimeter kilometer",
        "mass": "ounce oz pound lb gram kg kilogram ton tonne",
        "volume": "cup pint quart gallon liter litre ml milliliter tablespoon teaspoon tbsp tsp",
        "money": "cent dollar penny nickel dime buck",
        "data": "byte kb mb gb tb kilobyte megabyte gigabyte terabyte",
    }.items()
    for unit in units.split()
}
"""Units of one kind convert into each other: arithmetic mixing two of them is not plain."""
_TIMES_HUNDRED_PERCENT = re.compile(r"[*×x]\s*100\s*%\)*\s*$")
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
    first_number: int = -1
    """Which number of the text read (`NUMBER`, counted from 0) the left side starts with."""
    right_number: int = -1
    """Which number of the text read the right side starts with."""
    last_number: int = -1
    """Which number of the text read the right side ends with."""

    @property
    def holds(self) -> bool:
        # "3 / 6 = 50%" and "12 / 20 * 100 = 60%": a lone percentage is read both ways
        lefts = self.left_readings
        rights = _readings(self.right, self.right_value)
        if any(close_enough(a, b) for a in lefts for b in rights):
            return True
        if not self.approximate:
            return False
        decimals = _DECIMALS.search(self.right)
        tolerance = 0.5 * 10.0 ** -(len(decimals.group(1)) if decimals else 0) + 1e-9
        return any(abs(a - b) <= tolerance for a in lefts for b in rights)

    @property
    def left_readings(self) -> list[float]:
        """What the left side may mean: its value, and its value in percent when it multiplies by
        100% (`32 / 96 * 100%` is 0.333 and 33.3)."""
        return _readings(self.left, self.left_value)

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
    numbers = [m.start() for m in NUMBER.finditer(text)]
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
            right_start, right_end = starts[index + 1], starts[index + 1] + len(right)
            found.append(
                Link(
                    left,
                    right,
                    left_value,
                    right_value,
                    approximate,
                    first_number=bisect.bisect_left(numbers, starts[index]),
                    right_number=bisect.bisect_left(numbers, right_start),
                    last_number=bisect.bisect_left(numbers, right_end) - 1,
                )
            )
    return found


def checked_links(text: str) -> list[Link]:
    """The links of `text` to check, in order: those `links` reads, and those it reads once the
    units are taken out (`17 begonias x $2 = $35`, `20 miles + 15 miles = 36 miles`) where that
    cannot misread the arithmetic: a calculation on the left (not a label's number, `age in 3
    years = 42 + 3`), no number word among the units (`1 dozen * 3 = 36`), and no two units of
    one kind (`1 hour + 30 minutes = 90 minutes`, `2 miles * 5280 feet`).

    People write most steps with units: read without them, 22% of the slips planted in GSM8K's
    worked solutions went unnoticed.
    """
    found = links(text)
    stripped = without_units(text)
    tokens = list(NUMBER.finditer(text))
    if len(tokens) != len(NUMBER.findall(stripped)):
        return found  # the numbers are not kept in step: read nothing through units
    read = {link.right_number for link in found}
    for link in links(stripped):
        if link.right_number in read:
            continue
        if not _HAS_OPERATOR.search(link.left):
            continue  # `age in 3 years = 42 + 3`: a number of a label, its unit taken out
        span = text[tokens[link.first_number].start() : tokens[link.last_number].end()]
        after = text[tokens[link.last_number].end() :].split("\n", 1)[0]
        units = _UNIT.findall(span) + _UNIT.findall(after)[:1]
        if units and _units_agree(units):
            found.append(link)
    return sorted(found, key=lambda link: link.right_number)


def _units_agree(words: list[str]) -> bool:
    kinds: dict[str, str] = {}
    for word in (_singular(w.lower()) for w in words):
        if word in _NUMBER_WORDS:
            return False
        kind = _UNIT_KINDS.get(word)
        if kind is not None and kinds.setdefault(kind, word) != word:
            return False
    return True


def _singular(word: str) -> str:
    if word in _UNIT_KINDS or word in _NUMBER_WORDS:
        return word
    for ending, replacement in (("ies", "y"), ("ches", "ch"), ("es", "e"), ("s", "")):
        stem = word[: -len(ending)] + replacement
        if word.endswith(ending) and (stem in _UNIT_KINDS or stem in _NUMBER_WORDS):
            return stem
    return word


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
    # "3 / 6 = 50%", and "32 / 96 * 100% = 33.3": multiplying by 100% writes a percentage
    percentage = _LONE_PERCENTAGE.fullmatch(segment) or _TIMES_HUNDRED_PERCENT.search(segment)
    return [value, value * 100] if percentage else [value]


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
