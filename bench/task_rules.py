"""Rules that decide whether a task's answer is the one right answer (bench/tasks.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = [
    "CANNOT",
    "Cannot",
    "Contains",
    "ConvertedTime",
    "MustFail",
    "NameSet",
    "Number",
    "Rule",
]

CANNOT = re.compile(
    r"\b(can ?not|can't|can’t|unable|not able|no (tool|access|way|such|information|data|record)"
    r"|(don't|do not|doesn't|does not) (have|contain|exist|include|know)|not (available|found|exist"
    r"|possible|provided|listed|stored)|isn't (available|listed|stored)|no longer exists"
    r"|failed|error)\b",
    re.IGNORECASE,
)
"""An answer that says it could not do the task (the right outcome when no tool can)."""

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_TIME = re.compile(r"(?<![\d+-])([01]?\d|2[0-3])[:h]([0-5]\d)(?!\d)")


def _text(answer: str | None) -> str:
    """The answer as text; None, 'None' and blank are no answer."""
    if answer is None or answer.strip() in ("", "None", "null"):
        return ""
    return answer


def _numbers(text: str) -> list[float]:
    found = []
    for token in _NUMBER.findall(text):
        try:
            found.append(float(token.replace(",", "")))
        except ValueError:
            continue
    return found


class Rule:
    """Decides an answer; `expects_answer` False means the right outcome is a failure."""

    expects_answer = True

    def accepts(self, answer: str | None) -> bool:
        """Whether `answer` (the run's stdout answer) is right."""
        raise NotImplementedError

    def example(self) -> str:
        """A right answer, as a user would phrase it (the definitions test feeds it back)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Rule):
    """The answer states this number (commas and a trailing .0 are fine)."""

    value: float

    def accepts(self, answer: str | None) -> bool:
        return any(abs(n - self.value) < 1e-6 for n in _numbers(_text(answer)))

    def example(self) -> str:
        shown = int(self.value) if self.value == int(self.value) else self.value
        return f"The answer is {shown}."


@dataclass(frozen=True)
class Contains(Rule):
    """The answer holds every one of `phrases` (case-insensitive, as whole words) and none
    of `wrong` (plausible near misses)."""

    phrases: tuple[str, ...]
    wrong: tuple[str, ...] = ()

    def accepts(self, answer: str | None) -> bool:
        text = _text(answer)
        return all(_has(text, p) for p in self.phrases) and not any(
            _has(text, w) for w in self.wrong
        )

    def example(self) -> str:
        return "It is " + " and ".join(self.phrases) + "."


@dataclass(frozen=True)
class NameSet(Rule):
    """The answer names exactly these names out of `universe` (the other names the fixture
    holds, e.g. the files of the other folders)."""

    names: frozenset[str]
    universe: frozenset[str] = field(default_factory=frozenset)

    def accepts(self, answer: str | None) -> bool:
        text = _text(answer)
        named = {n for n in self.names | self.universe if _has(text, n)}
        return named == set(self.names)

    def example(self) -> str:
        return "They are: " + ", ".join(sorted(self.names)) + "."


@dataclass(frozen=True)
class ConvertedTime(Rule):
    """The answer gives `time` (HH:MM, today) in `source` converted to `target`."""

    time: str
    source: str
    target: str

    def expected(self) -> str:
        hours, minutes = (int(part) for part in self.time.split(":"))
        start = datetime.now(ZoneInfo(self.source)).replace(
            hour=hours, minute=minutes, second=0, microsecond=0
        )
        return start.astimezone(ZoneInfo(self.target)).strftime("%H:%M")

    def accepts(self, answer: str | None) -> bool:
        given = {f"{int(h):02d}:{m}" for h, m in _TIME.findall(_text(answer))}
        given.discard(self.time)  # the task's own time may be repeated
        return given == {self.expected()}

    def example(self) -> str:
        return f"{self.time} in {self.source} is {self.expected()} in {self.target}."


@dataclass(frozen=True)
class Cannot(Rule):
    """No tool can answer: the right outcome is a failure, or an answer that says it cannot
    (and does not also offer a value matching `forbid`, a made-up answer)."""

    forbid: str = r"\d"
    expects_answer = False

    def accepts(self, answer: str | None) -> bool:
        text = _text(answer)
        return bool(CANNOT.search(text)) and not re.search(self.forbid, text, re.IGNORECASE)

    def example(self) -> str:
        return "I cannot answer that: none of my tools has this information."


@dataclass(frozen=True)
class MustFail(Rule):
    """A configured server failed to start: only a non-zero exit with a reason is right."""

    expects_answer = False

    def accepts(self, answer: str | None) -> bool:
        return False

    def example(self) -> str:
        return ""


def _has(text: str, phrase: str) -> bool:
    """`phrase` in `text`, case-insensitive, not inside a longer word or name."""
    pattern = r"(?<![\w.-])" + re.escape(phrase) + r"(?![\w-]|\.\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None
