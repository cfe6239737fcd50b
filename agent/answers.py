"""Final answers in a fixed form: `\\boxed{...}`, as reasoning models are prompted to write them.

R1-style prompts end with "put your final answer within \\boxed{}". The answer text then holds the
whole explanation, and the value is the content of the last box.
"""

from __future__ import annotations

import re

__all__ = ["asks_for_boxed", "boxed_answer", "extract_boxed"]

# `(?![A-Za-z])` keeps `\boxedfoo` out; the brace may follow after spaces (`\boxed {5}`)
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def extract_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, stripped.

    Braces nest (`\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`) and escaped braces (`\\{`) are
    content. A box inside a box belongs to the outer one. Empty boxes are skipped: "within
    \\boxed{}" quotes the instruction, it is no answer.

    Returns:
        The content, or None when `text` has no box with content or the last box never closes
        (a cut-off answer has no reliable value).
    """
    found: str | None = None
    position = 0
    while match := _BOX.search(text, position):
        start = match.end()
        while start < len(text) and text[start].isspace():
            start += 1
        if start == len(text) or text[start] != "{":
            position = match.end()
            continue
        end = _closing_brace(text, start)
        if end is None:
            return None
        content = text[start + 1 : end].strip()
        found = content or found
        position = end + 1
    return found


def asks_for_boxed(task: str) -> bool:
    """Whether `task` asks for the answer in `\\boxed{}` (or `\\fbox{}`)."""
    return _BOX.search(task) is not None


def boxed_answer(task: str, answer: str) -> str | None:
    """The boxed value of `answer` when `task` asked for one, else None."""
    return extract_boxed(answer) if asks_for_boxed(task) else None


def _closing_brace(text: str, opening: int) -> int | None:
    """The index of the brace that closes the one at `opening`, or None when none does."""
    depth = 0
    index = opening
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2  # `\{`, `\}` and `\\` are not structure
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None
