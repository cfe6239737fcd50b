"""Word problems (GSM8K's shape): the quantities a task gives, and checks that the work uses them.

A word problem gives its quantities in digits, in words ("twelve", "a dozen", "half"), as
shares ("1/4", "25%") and through units ("a week" is 7 days); a right working uses each of them
and writes no number that none of them, a tool result or a correct calculation gives. Every
check here is plain code, so a small model cannot talk its way past it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from verity.messages import Finding, ToolCall, Verdict
from verity.tools.base import ToolResult
from verity.verify._base import Candidate
from verity.verify._claims import format_number, numbers_in, plain
from verity.verify._equations import close_enough as _same
from verity.verify._equations import links, without_units
from verity.verify._unrelated import from_server

__all__ = [
    "check_arguments",
    "check_coverage",
    "confirmed_only_if_complete",
    "untraced_numbers",
    "without_made_up_inputs",
]

_WORD_NUMBERS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
    "million": 1_000_000,
    "half": 0.5,
    "quarter": 0.25,
    "third": 1 / 3,
    "twice": 2,
    "double": 2,
    "triple": 3,
    "dozen": 12,
    "percent": 100,
}
_UNIT_NUMBERS = {
    # units imply numbers the task never writes: 7 days a week, 60 minutes an hour
    "week": (7,),
    "hour": (60,),
    "minute": (60,),
    "year": (12, 52, 365),
}
_WORDS = re.compile(r"[a-z]+")
_SHARE = re.compile(
    r"(?<![\w.,/])(\d+)\s*/\s*(\d+)(?![\w/]|[.,]\d)"  # 1/4
    r"|(?<![\w.])(\d+(?:\.\d+)?)\s*(?:%|percent\b)"  # 25%, 25 percent
    r"|\b([a-z]+)\s+percent\b",  # twenty percent
    re.IGNORECASE,
)
_CARDINALS = frozenset(
    "three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety".split()
)
"""Number words that are a quantity on their own (not `third`, `half`, `hundred`, `twice`)."""
_JOINS_A_NUMBER = frozenset(_WORD_NUMBERS) - {"percent"}
"""Words that make a cardinal beside them part of a larger number ("five hundred", "twenty
five"); "five percent" is still the quantity 5."""
# "1." or "Step 3:" numbering a list: a label, not a quantity
_LIST_MARKERS = re.compile(
    r"(?im)^[\s#>*-]*\**(?:step\s+)?\d{1,2}[.):]\**(?=\s)|\bstep\s+\d{1,2}\b"
)
_FREE = (0.0, 1.0, 2.0, 100.0)
"""Numbers any reasoning may use without a source (halving, percent)."""


def _task_numbers(task: str) -> list[float]:
    words = [w.removesuffix("s") for w in _WORDS.findall(task.lower())]
    named = [float(_WORD_NUMBERS[w]) for w in words if w in _WORD_NUMBERS]
    implied = [float(n) for w in words for n in _UNIT_NUMBERS.get(w, ())]
    return numbers_in(task) + named + implied


def _one_step(numbers: Iterable[float]) -> set[float]:
    """Every number one arithmetic operation on two of `numbers` gives."""
    values = set(numbers)
    results = set(values)
    for a, b in itertools.permutations(values, 2):
        results.update((a + b, a - b, a * b))
        if b:
            results.add(a / b)
    for a in values:
        # a percentage as a fraction, and what is left after it or added by it (25% off: 0.75)
        results.update((a * a, a * 100, *_share_forms(a / 100)))
    return results


def _evidence_numbers(evidence: Iterable[tuple[ToolCall, ToolResult]]) -> list[float]:
    found: list[float] = []
    for call, result in evidence:
        found.extend(numbers_in(json.dumps(call.arguments)))
        if not result.is_error:
            found.extend(numbers_in(result.content))
    return found


def untraced_numbers(
    text: str,
    *,
    task: str,
    evidence: list[tuple[ToolCall, ToolResult]],
    known: Iterable[float] = (),
) -> list[Finding]:
    """One finding per number in `text` that nothing supports.

    A number is supported when it is in the task (or one step of arithmetic on the task's
    numbers), in a tool call or result, in `known` (values an executed program computed), or is
    the result of a correct equation in `text` whose own numbers are supported: a chain of right
    arithmetic from the task's numbers traces every link.
    """
    text = _LIST_MARKERS.sub(" ", plain(text))
    derivable = _one_step([*_task_numbers(task), *_FREE])
    traced = [*_evidence_numbers(evidence), *known]

    def supported(number: float) -> bool:
        return any(_same(number, n) for n in traced) or any(_same(number, n) for n in derivable)

    for link in links(without_units(text)):
        if link.holds and all(supported(n) for n in numbers_in(link.left.replace("-", " "))):
            traced.extend(numbers_in(link.right.replace("-", " ")))
            traced.append(link.right_value)
    findings: list[Finding] = []
    for number in dict.fromkeys(numbers_in(text)):
        if supported(number) or supported(abs(number)):
            continue
        findings.append(
            Finding(
                claim=f"the number {format_number(number)}",
                ok=False,
                evidence="has no source: it is in no tool result, is not a number of the task "
                "or one step of arithmetic on them, and no correct calculation gives it.",
            )
        )
    return findings


def check_arguments(
    call: ToolCall, *, task: str, evidence: list[tuple[ToolCall, ToolResult]]
) -> list[Finding]:
    """Numbers in the call's arguments that appear nowhere in the task or earlier evidence."""
    known = [*_task_numbers(task), *_evidence_numbers(evidence), *_FREE]
    return [
        Finding(
            claim=f"{call.name} argument {format_number(number)}",
            ok=False,
            evidence="This number is in neither the task nor any earlier tool result.",
        )
        for number in dict.fromkeys(numbers_in(_argument_text(call.arguments)))
        if not any(_same(number, n) for n in known)
    ]


def without_made_up_inputs(
    task: str, evidence: list[tuple[ToolCall, ToolResult]], closed: Collection[str] = ()
) -> list[tuple[ToolCall, ToolResult]]:
    """`evidence` less each computation's call that was fed a number neither the task (one step
    of arithmetic on its numbers included) nor an earlier kept call or result gives: its result
    only repeats what the model made up. A computation is a Python tool (the calculator; not an
    MCP server's tool) or a tool named in `closed`, those that say they reach nothing outside
    their arguments (MCP `openWorldHint: false`). Asked for the current price of one Bitcoin,
    the 1.5B model computed `1 * 65123.18` and answered with the result, which then was "in a
    tool result". A tool of the open world keeps its call: a city's coordinates from what the
    model knows are a fair question to a weather service."""
    derivable = _one_step([*_task_numbers(task), *_FREE])
    kept: list[tuple[ToolCall, ToolResult]] = []
    for call, result in evidence:
        computes = not from_server(call.name) or call.name in closed
        if computes and not result.is_error:
            known = [*_evidence_numbers(kept), *derivable]
            fed = numbers_in(_argument_text(call.arguments))
            if any(not any(_same(n, k) for k in known) for n in fed):
                continue
        kept.append((call, result))
    return kept


def _argument_text(arguments: dict[str, Any]) -> str:
    return " ".join(str(value) for value in arguments.values())


def check_coverage(
    text: str, *, task: str, evidence: list[tuple[ToolCall, ToolResult]], words: bool = False
) -> list[Finding]:
    """One finding per number the task writes in digits (and with `words`, as a number word on
    its own: "five dollars less", not "twenty-five" or "five hundred") that no calculation or
    answer uses.

    A percentage or fraction counts as used in the forms a working writes it: "25% more" as
    `x 1.25`, "1/4 don't come" as `x 0.75`.

    A word problem's quantities are there to be used; one that nothing touched is the commonest
    trace of a wrong setup (small models drop a step). Number words are for hints only: a task
    also counts what it describes ("the three girls", "four years later"), which no working
    writes: of GSM8K's 300 worked solutions, 5 leave a number in digits unused, 8 more a word.
    """
    used = [*numbers_in(text), *_evidence_numbers(evidence)]
    used += _shares_used(task, used)
    given = [*numbers_in(task), *(_cardinal_words(task) if words else [])]
    findings = []
    for number in dict.fromkeys(given):
        if number in _FREE or any(_same(number, n) or _same(number / 100, n) for n in used):
            continue
        findings.append(
            Finding(
                claim=f"task number {format_number(number)}",
                ok=False,
                evidence="The task gives this number, but no calculation and no part of the answer "
                "uses it.",
            )
        )
    return findings


def _shares_used(task: str, used: list[float]) -> list[float]:
    """The numbers of each share `task` writes whose value, what is left of the whole or the
    whole plus it is among `used`: a working writes "1/4 don't come" as `x .75` and "25% more"
    as `x 1.25`."""
    return [
        number
        for value, numbers in _shares(task)
        if value not in (0.0, 1.0)  # "0/5", "4/4": any working's 0, 1 or 2 would use them
        and any(_same(form, n) for form in _share_forms(value) for n in used)
        for number in numbers
    ]


def _share_forms(share: float) -> tuple[float, float, float]:
    """How a working writes a share of a whole: itself, what is left after it, the whole plus it."""
    return share, 1 - share, 1 + share


def _shares(task: str) -> Iterator[tuple[float, list[float]]]:
    """Each fraction ("1/4") and percentage ("25%", "twenty percent") `task` writes: its value
    and the numbers it is written with."""
    for numerator, denominator, percent, word in _SHARE.findall(task):
        if numerator and float(denominator):
            yield float(numerator) / float(denominator), [float(numerator), float(denominator)]
        elif percent:
            yield float(percent) / 100, [float(percent)]
        elif word.lower() in _CARDINALS:
            number = float(_WORD_NUMBERS[word.lower()])
            yield number / 100, [number]


def _cardinal_words(task: str) -> list[float]:
    """The quantities `task` writes as a single number word."""
    words = _WORDS.findall(task.lower())
    return [
        float(_WORD_NUMBERS[word])
        for i, word in enumerate(words)
        if word in _CARDINALS
        and not any(0 <= j < len(words) and words[j] in _JOINS_A_NUMBER for j in (i - 1, i + 1))
    ]


def confirmed_only_if_complete(verdict: Verdict, candidate: Candidate) -> Verdict:
    """`verdict`, no longer conclusive when the candidate's working leaves out a number the task
    gives (the finding says which).

    Agreement between derivations of one model confirms nothing when they share a misreading:
    asked for the third day's customers, the 0.5B model answered the second day's 150 and both
    of its programs computed 150 too; neither used the task's total of 500.
    """
    if not (verdict.ok and verdict.conclusive):
        return verdict
    unused = check_coverage(candidate.working(), task=candidate.task, evidence=candidate.evidence)
    if not unused:
        return verdict
    reason = " Agreement cannot confirm an answer whose working leaves out a quantity of the task."
    findings = [f.model_copy(update={"evidence": f.evidence + reason}) for f in unused]
    return verdict.model_copy(
        update={"conclusive": False, "findings": [*verdict.findings, *findings]}
    )
