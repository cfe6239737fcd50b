"""Grounding: the specific facts an answer states, each traced to the task or a tool result.

A run that used tools answers from what they returned. The facts a model can only have
learned from a tool (times, dates, paths and file names, quoted text, ids, numbers) must then
be found in the task or in a tool call or result; one that is in neither was made up. What is
not checkable stays unchecked: words and names without a mark of their own, and numbers a
sentence derives (a count of listed items, a difference, a sum) are read as derived.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from verity.messages import Finding, ToolCall
from verity.tools.base import ToolResult
from verity.verify._claims import numbers_in
from verity.verify._tool_failures import failed
from verity.verify._unrelated import from_server
from verity.verify._word_problems import untraced_numbers

__all__ = ["found_nothing", "leaves", "Sources", "ungrounded_facts"]

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_MERIDIEM = r"\s*([ap])\.?\s?m\b\.?"
_URL = re.compile(r"\b(?:https?|file)://[^\s<>()\[\]'\"`]+", re.IGNORECASE)
_ISO = re.compile(
    r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)"
)
_NAMED_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+{_DAY}(?:,?\s+(\d{{4}}))?|{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+(\d{{4}}))?)"
    r"(?![\w:])",
    re.IGNORECASE,
)
_CLOCK = re.compile(
    rf"(?<![\d:.])(\d{{1,2}}):(\d{{2}})(?::\d{{2}})?(?:{_MERIDIEM})?(?![\d:])", re.IGNORECASE
)
_HOUR = re.compile(rf"(?<![\d:.])(\d{{1,2}}){_MERIDIEM}", re.IGNORECASE)
_PATH = re.compile(
    r"(?<![\w/.:@-])(?:~|\.{1,2})?(?:/[\w.@+-]+)+/?"  # /tmp/a.txt, ~/notes, ./sub
    r"|(?<![\w/.:@-])[\w@+-][\w.@+-]*(?:/[\w.@+-]+)+/?"  # sub/a.txt, src/pkg/mod.py
    r"|(?<![\w/.@-])[\w@+-][\w@+-]*(?:\.[\w@+-]+)*\.[a-z][a-z0-9]{0,7}(?![\w/@-])"  # a.txt
)
_NOT_FILES = frozenset("e.g i.e a.m p.m etc vs no mr mrs dr st".split())
_QUOTED = re.compile(
    r"“([^”\n]{2,200})”|(?<!\w)\"([^\"\n]{1,200})\"(?!\s*:)|(?<!\w)'([^'\n]{2,200})'(?![\w:]|\s+:)"
    r"|`([^`\n]{1,200})`|‘([^’\n]{2,200})’|「([^」\n]{1,200})」"
)
"""Quoted text; a JSON or Python key (`"name":`) is the answer's own structure, no quote."""
_HEX_ID = re.compile(r"(?<![\w-])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}(?![\w-])")
_CODE = re.compile(r"```([\w+-]*)[^\n]*\n.*?(?:```|$)", re.DOTALL)
_DATA_FENCES = frozenset({"", "json", "text", "txt", "yaml", "csv", "console", "output"})
_WORD = re.compile(r"\w+")
_MAX_DERIVING = 40
"""Distinct tool-result numbers whose sums and differences count as derived: beyond that, any
small number would be one."""


@dataclass
class Sources:
    """Where an answer's facts may come from: the task, and every tool call and result."""

    text: str
    """Everything, casefolded, whitespace collapsed."""
    words: set[str] = field(default_factory=set)
    times: set[tuple[int, int]] = field(default_factory=set)
    dates: set[tuple[int | None, int, int]] = field(default_factory=set)
    counts: set[float] = field(default_factory=set)
    """How many items each tool result lists: lines, lines of one kind, JSON items, keys."""
    derived: set[float] = field(default_factory=set)
    """Sums and differences of two numbers of the task and the tool results."""
    errors: str = ""
    """The failed calls' errors, casefolded: only a quote may come from them (it reports the
    error, and states nothing of what was asked for)."""

    @classmethod
    def of(cls, task: str, evidence: list[tuple[ToolCall, ToolResult]]) -> Sources:
        """The sources of a run: `task` and its tool calls with their results.

        A failed call is no source: its error says nothing of what was asked for. A call that
        found nothing (an empty result) confirms none of its arguments: a value the model
        searched for is not a fact because it searched for it.
        """
        errors = _squash("\n".join(r.content for _, r in evidence if failed(r)))
        evidence = [(call, result) for call, result in evidence if not failed(result)]
        texts = [task]
        for call, result in evidence:
            texts.append(call.name)
            if not found_nothing(result.content):
                texts += [json.dumps(call.arguments, ensure_ascii=False)]
                texts += [str(v) for v in leaves(call.arguments)]
            texts += [result.content, *(str(v) for v in leaves(_parsed(result.content)))]
        whole = _squash("\n".join(texts))
        sources = cls(text=whole, words=set(_WORD.findall(whole)), errors=errors)
        for text in texts:
            sources.times.update(_times(text))
            sources.dates.update(_dates(text))
        for _, result in evidence:
            sources.counts.update(_counts(result.content))
        numbers = {abs(n) for n in numbers_in(task)}
        numbers.update(abs(n) for _, r in evidence for n in numbers_in(r.content))
        if len(numbers) <= _MAX_DERIVING:
            sources.derived = {a + b for a in numbers for b in numbers}
            sources.derived |= {abs(a - b) for a in numbers for b in numbers}
        return sources

    def has(self, text: str) -> bool:
        """Whether `text` is written in the sources (case and spacing aside)."""
        return _squash(text) in self.text

    def has_word_run(self, text: str) -> bool:
        """Whether `text` is in the sources as a whole token (not inside a longer name)."""
        pattern = rf"(?<![\w.-]){re.escape(_squash(text))}(?![\w-])"
        return re.search(pattern, self.text) is not None


def ungrounded_facts(
    answer: str,
    *,
    task: str,
    evidence: list[tuple[ToolCall, ToolResult]],
    could_look: bool = False,
) -> list[Finding]:
    """One finding per fact of `answer` in neither the task nor the run's tool calls and results.

    When the run used no tool, the model may answer from what it knows, and nothing is checked;
    unless `could_look`: it was offered tools that look at the user's world (an MCP server's)
    and called none. Then what only those tools could tell (quoted names, paths, ids, links,
    clock times) must be in the task; numbers and dates may still be its knowledge, unless the
    task asks for a value as it is now ("the current price", "today's date"). A failed
    call's error is no source (`_tool_failures`): a fact only an error holds is ungrounded.
    """
    if not evidence and not could_look:
        return []
    now = could_look and _ASKS_NOW.search(task) is not None
    sources = Sources.of(task, evidence)
    evidence = [(call, result) for call, result in evidence if not failed(result)]
    text = _CODE.sub(lambda m: m.group() if m.group(1).lower() in _DATA_FENCES else " ", answer)
    findings: list[Finding] = []
    for kind, found, pattern in _facts():
        for match in pattern.finditer(text):
            fact = match.group().strip()
            if (evidence or now or kind in _LOOKED_UP) and not found(match, sources):
                findings.append(_finding(kind, fact))
        # a fact is checked once, as what it is: the digits of a time are not numbers too
        text = pattern.sub(lambda m: " " * len(m.group()), text)
    if evidence or now:
        known = [*sources.counts, *sources.derived]
        findings += untraced_numbers(text, task=task, evidence=evidence, known=known)
        findings += _lone_number(answer, task=task, evidence=evidence, sources=sources)
    return list({f.claim: f for f in findings}.values())


def _lone_number(
    answer: str, *, task: str, evidence: list[tuple[ToolCall, ToolResult]], sources: Sources
) -> list[Finding]:
    """An answer that is one bare number must be one the task or the results give, a count of
    what they list, a sum or difference of two of their numbers, or one step of arithmetic on
    two numbers of the task. The numbers that pass anywhere else (0, 1, 2, 100: "1 file",
    "0 rows") are no answer on their own when the results say otherwise ("0" after a count
    returned 2); nor is a number or time that only repeats the task's own input."""
    bare = answer.strip().strip(" .`*'\"")
    if _time_echoed(answer, task, evidence):
        return [
            Finding(
                claim=f"the time {bare}",
                ok=False,
                evidence="only repeats a time the task gives, while the tool results give "
                "another: answer with what the tools returned.",
            )
        ]
    if _BARE_NUMBER.fullmatch(bare) is None:
        return []
    if any(found_nothing(result.content) for _, result in evidence):
        return []  # nothing found: 0 (or a count of nothing) may say so
    written = numbers_in(bare)
    if len(written) != 1:
        return []
    number, asked = written[0], numbers_in(task)
    given = [*asked, *sources.counts, *_one_step_apart(asked)]
    given += [n for n in sources.derived if n != 0]  # a sum or difference; 0 is only a - a
    given += [n for _, result in evidence for n in numbers_in(result.content)]
    if any(abs(number - n) < 1e-9 for n in asked) and _results_say_otherwise(number, evidence):
        return [
            Finding(
                claim=f"the number {bare}",
                ok=False,
                evidence="only repeats a value the task gives, while the tool results say "
                "something else: answer with what the tools returned.",
            )
        ]
    if any(abs(number - n) < 1e-9 for n in given):
        return []
    return [
        Finding(
            claim=f"the number {bare}",
            ok=False,
            evidence="is the whole answer, but no tool result and nothing in the task gives it.",
        )
    ]


def _results_say_otherwise(number: float, evidence: list[tuple[ToolCall, ToolResult]]) -> bool:
    """Whether an MCP server's tool returned numbers of its own (not the call's arguments
    repeated), and none of them is `number`. A Python tool's call, such as the calculator's,
    is a step of the model's own arithmetic and is not counted."""
    returned = []
    for call, result in evidence:
        if not from_server(call.name) or failed(result):
            continue
        given = numbers_in(json.dumps(call.arguments))
        returned += [n for n in numbers_in(result.content) if n not in given]
    return bool(returned) and not any(abs(number - n) < 1e-9 for n in returned)


def _time_echoed(answer: str, task: str, evidence: list[tuple[ToolCall, ToolResult]]) -> bool:
    """Whether the answer is one clock time that the task gives, while an MCP server's tool
    returned other times (a conversion answered with its input)."""
    match = _CLOCK.fullmatch(answer.strip().strip(" .`*'\""))
    if match is None or (time := _clock(*match.groups())) is None:
        return False
    returned = set()
    for call, result in evidence:
        if from_server(call.name) and not failed(result):
            returned |= set(_times(result.content)) - set(_times(json.dumps(call.arguments)))
    return time in set(_times(task)) and bool(returned) and time not in returned


def _one_step_apart(numbers: list[float]) -> list[float]:
    """Sums, differences, products and quotients of two different numbers of the list."""
    found = []
    for i, a in enumerate(numbers):
        for b in numbers[i + 1 :]:
            found += [a + b, abs(a - b), a * b]
            found += [a / b] if b else []
            found += [b / a] if a else []
    return found


_BARE_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")


_ASKS_NOW = re.compile(
    r"\b(?:current(?:ly)?|now|today(?:'s|’s)?|tonight|latest|at the moment|live|real-time)\b",
    re.IGNORECASE,
)
"""A task that asks for a value as it is now: no model knows it without looking."""
_LOOKED_UP = frozenset({"the link", "the quoted text", "the time", "the id", "the path"})
"""The facts a run that called no tool cannot know: they are looked up, not learned."""


_Found = Callable[[re.Match[str], Sources], bool]
"""Whether one matched fact is in the sources."""


def _facts() -> Iterator[tuple[str, _Found, re.Pattern[str]]]:
    """Each kind of fact with its test, most specific first: a quoted path is a quote."""
    yield "the link", _link_found, _URL
    yield "the quoted text", _quote_found, _QUOTED
    yield "the date", _iso_found, _ISO
    yield "the date", _named_date_found, _NAMED_DATE
    yield "the time", _clock_found, _CLOCK
    yield "the time", _hour_found, _HOUR
    yield "the id", _id_found, _HEX_ID
    yield "the path", _path_found, _PATH


def _finding(kind: str, fact: str) -> Finding:
    return Finding(
        claim=f"{kind} {fact}",
        ok=False,
        evidence="is in no tool result and not in the task: nothing the run saw says it.",
    )


def _link_found(match: re.Match[str], sources: Sources) -> bool:
    return sources.has(match.group().rstrip(".,;:!?"))


def _id_found(match: re.Match[str], sources: Sources) -> bool:
    return sources.has(match.group())


def _quote_found(match: re.Match[str], sources: Sources) -> bool:
    quoted = next(g for g in match.groups() if g is not None).strip().rstrip(".,;:!?")
    if not quoted or sources.has(quoted) or _squash(quoted) in sources.errors:
        return True
    # a quote set in other words or order still says what a result says, if all its words do
    return all(word in sources.words for word in _WORD.findall(quoted.casefold()))


def _iso_found(match: re.Match[str], sources: Sources) -> bool:
    year, month, day, hour, minute = match.groups()
    date_ok = (int(year), int(month), int(day)) in sources.dates
    time_ok = hour is None or (int(hour), int(minute)) in sources.times
    return date_ok and time_ok


def _named_date_found(match: re.Match[str], sources: Sources) -> bool:
    date = _named_date(match)
    if date is None:
        return True  # "May 5" that is no date we can read: not a claim we check
    year, month, day = date
    return any(
        (m, d) == (month, day) and (year is None or y in (None, year)) for y, m, d in sources.dates
    )


def _clock_found(match: re.Match[str], sources: Sources) -> bool:
    time = _clock(match.group(1), match.group(2), match.group(3))
    return time is None or time in sources.times


def _hour_found(match: re.Match[str], sources: Sources) -> bool:
    time = _clock(match.group(1), "00", match.group(2))
    return time is None or time in sources.times


def _path_found(match: re.Match[str], sources: Sources) -> bool:
    path = match.group().rstrip("/")
    if not path or path.casefold() in _NOT_FILES or not re.search(r"[A-Za-z]", path):
        return True
    if "/" not in path and path.rsplit(".", 1)[0].isdigit():
        return True  # a number such as 3.5 written before a unit: no file name
    if sources.has(path):
        return True
    # relative or absolute, a listing names the file: its last part is what must be there
    return sources.has_word_run(path.rsplit("/", 1)[-1])


def _clock(hour: str, minute: str, meridiem: str | None) -> tuple[int, int] | None:
    h, m = int(hour), int(minute)
    if meridiem:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if meridiem.lower() == "p" else 0)
    if h > 24 or m > 59:
        return None
    return h % 24, m


def _times(text: str) -> Iterator[tuple[int, int]]:
    for match in _CLOCK.finditer(text):
        if (time := _clock(match.group(1), match.group(2), match.group(3))) is not None:
            yield time
            if match.group(3) is None and time[0] < 12:  # "09:00" may be read as 9 pm too
                yield time[0] + 12, time[1]
    for match in _HOUR.finditer(text):
        if (time := _clock(match.group(1), "00", match.group(2))) is not None:
            yield time
    for match in _ISO.finditer(text):
        if match.group(4) is not None:
            yield int(match.group(4)) % 24, int(match.group(5))
    lowered = text.casefold()
    if "noon" in lowered:
        yield 12, 0
    if "midnight" in lowered:
        yield 0, 0


def _dates(text: str) -> Iterator[tuple[int | None, int, int]]:
    for match in _ISO.finditer(text):
        yield int(match.group(1)), int(match.group(2)), int(match.group(3))
    for match in _NAMED_DATE.finditer(text):
        if (date := _named_date(match)) is not None:
            yield date


def _named_date(match: re.Match[str]) -> tuple[int | None, int, int] | None:
    day_first, year_first, day_second, year_second = match.groups()
    month_name = re.search(_MONTH, match.group(), re.IGNORECASE)
    if month_name is None:
        return None
    month = _MONTHS.index(month_name.group()[:3].casefold()) + 1
    day = int(day_first or day_second)
    year = year_first or year_second
    if not 1 <= day <= 31:
        return None
    return (int(year) if year else None), month, day


def _counts(content: str) -> set[float]:
    """How many things `content` lists, however it lists them."""
    lines = [line.strip() for line in content.splitlines() if line.strip()]
    counts = {float(len(lines))}
    kinds: dict[str, int] = {}
    for line in lines:
        first = line.split()[0]
        kinds[first] = kinds.get(first, 0) + 1
    counts.update(float(n) for n in kinds.values())
    for key in set(re.findall(r"[\"']?(\w+)[\"']?\s*:", content)):
        counts.add(float(len(re.findall(rf"[\"']?\b{re.escape(key)}[\"']?\s*:", content))))
    if len(lines) == 1:
        counts.add(float(len(lines[0].split(","))))
    parsed = _parsed(content)
    counts.update(float(n) for n in _sizes(parsed))
    return counts


def _sizes(value: object) -> Iterator[int]:
    if isinstance(value, list):
        yield len(value)
        for item in value:
            yield from _sizes(item)
    elif isinstance(value, dict):
        yield len(value)
        for item in value.values():
            yield from _sizes(item)


_NOTHING_FOUND = re.compile(
    r"(?:no (?:results?|matches|entries|items|rows|records|files|nodes|entities)"
    r"(?: were| was)? found|nothing (?:was )?found|not found|no match(?:es)?)\.?",
    re.IGNORECASE,
)


_NOTHING = frozenset({"", "null", "none", "()", '""', "''"})


def found_nothing(content: str) -> bool:
    """Whether a result holds nothing: blank, `null`, JSON without a single value (`[]`,
    `{"entities": []}`), "no results found", or a heading over nothing ("Commit history:")."""
    text = content.strip()
    if text.casefold() in _NOTHING:
        return True
    parsed = _parsed(text)
    if isinstance(parsed, dict | list):
        return not any(True for _ in leaves(parsed))
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and lines[0].rstrip().endswith(":"):
        return True  # a heading over an empty list: "Commit history:"
    return _NOTHING_FOUND.fullmatch(text) is not None


def _parsed(content: str) -> object:
    try:
        return json.loads(content)
    except ValueError:
        return None


def leaves(value: object) -> Iterable[object]:
    """Every scalar inside a JSON value."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    elif value is not None:
        yield value


def _squash(text: str) -> str:
    return " ".join(text.casefold().split())
