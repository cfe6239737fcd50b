"""Results that have nothing to do with the task: an answer drawn from them answers nothing.

Asked for tomorrow's weather in Berlin with only a git server, the embedded 0.5B model called
`git_status` on the repository and answered with its last line: every fact of that answer is
in a tool result, so grounding passes it. What is wrong is that no call was about the task. A
call is about the task when its arguments hold a word, number or path of the task ("Berlin",
`notes.txt`, `12`), or its tool's name or description shares a word with it ("Which tables…"
and `list_tables`). When every successful call of the run is an MCP server's call about
nothing in the task, the answer rests on results that do not answer it.

Lexical only, so it is kept narrow: only an MCP server's tools are judged (a Python tool such
as the calculator is taken as the program's own), and a task with no word in Latin letters is
not judged (its words cannot be matched against English tool descriptions).
"""

from __future__ import annotations

import json
import re

from verity.messages import ToolCall
from verity.tools.base import ToolResult, ToolSpec
from verity.verify._tool_failures import failed

__all__ = ["from_server", "unrelated_results"]

_SERVER_TOOL = "__"
"""Between an MCP server's name and its tool's (tools/mcp/_names.py SEPARATOR)."""
_WORD = re.compile(r"[^\W\d_][\w'-]*[^\W_]|\d+(?:\.\d+)?")
_PATH = re.compile(r"[\w.~-]*/[\w./~-]+|[\w-]+\.[a-z][a-z0-9]{0,7}\b")
_STOP = frozenset(
    """the and for but not are was were will would can could should shall may might must have
    has had does did doing done what which who whom whose when where why how that this these
    those there then than them they their its it's into onto from with without about above
    below over under between after before again also just only very much many more most some
    any all each every other such own same too you your yours me my mine our ours his her
    hers him she he we us please tell give let like want need know show see say said get
    got make use using one ones thing things now yes out off here be is am an as at by if in
    of on or so to up do no""".split()
)
"""Words that say nothing of what a task is about."""


def from_server(name: str) -> bool:
    """Whether the tool named `name` is an MCP server's (named `server__tool`), not a Python
    tool of the program's own such as the calculator."""
    return _SERVER_TOOL in name


def unrelated_results(
    task: str, evidence: list[tuple[ToolCall, ToolResult]], tools: list[ToolSpec]
) -> str | None:
    """Why the run's successful results have nothing to do with `task`, or None when one of
    them has (or the check does not apply)."""
    succeeded = [call for call, result in evidence if not failed(result)]
    if not succeeded or not all(from_server(call.name) for call in succeeded):
        return None
    terms = _terms(task)
    if not any(term.isascii() and term.isalpha() for term in terms):
        return None
    described = {spec.name: spec.description for spec in tools}
    if any(_about(call, described.get(call.name, ""), task, terms) for call in succeeded):
        return None
    names = ", ".join(dict.fromkeys(call.name for call in succeeded))
    shown = ", ".join(repr(term) for term in sorted(terms)[:6])
    return (
        f"rests on results that have nothing to do with the task: no call's arguments and no "
        f"tool ({names}) is about {shown}"
    )


def _about(call: ToolCall, description: str, task: str, terms: set[str]) -> bool:
    """Whether `call` is about the task: its arguments hold a term or path of it, or its
    tool's name or description shares a word with it."""
    arguments = json.dumps(call.arguments, ensure_ascii=False).casefold()
    if any(path.casefold().strip("./") in arguments for path in _PATH.findall(task)):
        return True
    if _terms(arguments) & terms:
        return True
    tool = call.name.split(_SERVER_TOOL, 1)[-1].replace("_", " ").replace("-", " ")
    return bool(_terms(f"{tool} {call.name.split(_SERVER_TOOL, 1)[0]} {description}") & terms)


def _terms(text: str) -> set[str]:
    """The words (stemmed) and numbers of `text` that can say what it is about."""
    found = set()
    for word in _WORD.findall(text.casefold()):
        if word[0].isdigit():
            found.add(word)
        elif len(word) >= 3 and word not in _STOP:
            found.add(_stem(word))
    return found


def _stem(word: str) -> str:
    """A crude English stem: `tables` and `table` meet, `listing` and `list`, `queries` and
    `query`."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word
