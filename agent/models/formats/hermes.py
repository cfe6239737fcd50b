"""Qwen2.5 / Hermes tool calls: `<tool_call>{"name": ..., "arguments": ...}</tool_call>`.

Small Qwen models rarely write the tags their template asks for: they answer with bare JSON or
JSON in a ```json fence. So a call is recognised by the tag, a fence or a leading `{`, and the
grammar accepts all three spellings (design D1): constraining the model to one spelling it does
not use pushed it off its natural path and made it pick worse tools.

Parallel calls: left alone, small models write exactly one fenced object and stop, even when
the request lists several items; made to open an array, they list one call per item and close
it after one when one is enough (embedded 0.5B model, BFCL parallel: 0/8 -> 4/8 correct). But
the forced `[` is far off the model's path (the 0.5B model gives it a probability near e^-10
after the fence), and when one call is enough it sometimes picks another function or other
values than it would have. So a fence first holds an array; when the model closes it after one
call, that call is written again under `single_grammar`, where the fence may hold a lone object:
the call the model writes when nothing pushes it (BFCL multiple, bench/bfcl.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from verity.messages import Message, ToolCall
from verity.models._template import ChatTemplate
from verity.models.formats.base import (
    WHITESPACE,
    CallStart,
    ParsedCalls,
    call_rules,
    validate_call,
)
from verity.tools.base import ToolSpec

__all__ = ["HermesFormat"]

_CALL_OPENING = re.compile(r"<tool_call>|```(?:json)?\s*(?:<tool_call>\s*)?[\[{]|\(?\s*\{")
"""A call opens with the tag, a JSON fence, or a bare `{`, also in parentheses: `({"name": ...})`
(the embedded 0.5B model writes that, and as text it would be an answer that is a call)."""
_MAYBE_FENCE = re.compile(r"`{1,2}|```(?:j(?:s(?:o(?:n)?)?)?)?\s*|\(\s*")
_TAG = "<tool_call>"
_FENCED_LIST = re.compile(r"[ \t\n]*```(?:json)?[ \t\n]*\[")
_LATER_CALL = re.compile(
    r"<tool_call>|(?m:^)[ \t]*```(?:json)?[ \t]*\n?\s*(?:<tool_call>\s*)?[\[{]"
)
_BLOCK = re.compile(
    r"<tool_call>\s*(?P<tag>.*?)\s*(?:</tool_call>|\Z)"
    r"|```(?:json)?[ \t]*\n?(?P<fence>.*?)(?:```|\Z)",
    re.S,
)


class HermesFormat:
    """The `<tool_call>` format of Qwen2.5, Qwen3, QwQ and Hermes-style templates."""

    name = "hermes"

    def call_start(self, content: str) -> CallStart:
        """A call starts with the tag, a JSON fence, or a bare `{` (also after a `(`); anything
        else is text."""
        text = content.lstrip()
        if _CALL_OPENING.match(text):
            return "call"
        if not text or _TAG.startswith(text) or _MAYBE_FENCE.fullmatch(text):
            return "undecided"
        return "text"

    def find_call(self, content: str) -> int | None:
        """A tag anywhere, or a JSON fence at the start of a line (a bare `{` in running text is
        more often an example than a call)."""
        match = _LATER_CALL.search(content)
        return match.start() if match else None

    def render(self, template: ChatTemplate, messages: list[Message], tools: list[ToolSpec]) -> str:
        """The model's own template describes the tools."""
        return template.render(messages, tools)

    def grammar(self, tools: list[ToolSpec]) -> str:
        """One or more calls: tagged, bare, or an array of calls in a fence."""
        return _grammar(tools, fenced="calls")

    def single_grammar(self, tools: list[ToolSpec]) -> str | None:
        """One block, whose fence may also hold a lone call object (nothing may follow it:
        tiny models otherwise repeat the block until the token limit)."""
        return _grammar(tools, fenced="(call | calls)", start="start: WS block WS")

    def lone_call(self, call_text: str) -> bool:
        """A fenced array that has just closed after its first call."""
        opening = _FENCED_LIST.match(call_text)
        if opening is None:
            return False
        try:
            value, end = json.JSONDecoder().raw_decode(call_text, opening.end() - 1)
        except json.JSONDecodeError:
            return False
        return isinstance(value, list) and len(value) == 1 and not call_text[end:].strip(" \t\n`")

    def text_grammar(self) -> str:
        """Text whose first visible character cannot open a call (`{`, `(`, a fence or a tag)."""
        return "start: /[ \\t\\n]*[^{(<`\\[ \\t\\n][^\\x00]*/"

    def parse(self, text: str, tools: list[ToolSpec], *, first_id: int) -> ParsedCalls:
        """Find tagged, fenced and bare JSON calls; validate each against its tool's schema."""
        payloads: list[Any] = []
        invalid: list[str] = []
        kept: list[str] = []
        position = 0
        for match in _BLOCK.finditer(text):
            body = match.group("tag") if match.group("tag") is not None else match.group("fence")
            decoded = _decode_json(body.strip())
            if match.group("tag") is None and not _may_be_calls(body, decoded):
                continue  # an ordinary code block, not a call
            kept.append(text[position : match.start()])
            position = match.end()
            if decoded is None and (leading := _leading_calls(body)):
                payloads.extend(leading)  # a list cut off (a loop stopped): its whole calls
            elif decoded is None:
                invalid.append(f"This tool call is not valid JSON: {body.strip()[:200]!r}.")
            else:
                payloads.extend(decoded if isinstance(decoded, list) else [decoded])
        kept.append(text[position:])
        content_parts = []
        for part in kept:
            remaining, bare = _bare_objects(part)
            payloads.extend(bare)
            content_parts.append(remaining)
        calls: list[ToolCall] = []
        for payload in payloads:
            call, problem = validate_call(payload, tools, f"call_{first_id + len(calls)}")
            if call is not None:
                calls.append(call)
            elif problem is not None:
                invalid.append(problem)
        return ParsedCalls(calls, invalid, "".join(content_parts).strip())


def _grammar(
    tools: list[ToolSpec], *, fenced: str, start: str = "start: WS block (WS block)* WS"
) -> str:
    rules = [
        start,
        f'block: "<tool_call>" WS call WS "</tool_call>" | "```" "json"? WS {fenced} WS "```"'
        " | call | calls",
        'calls: "[" WS call (WS "," WS call)* WS "]"',
        f"WS: /{WHITESPACE}/",
        *call_rules(tools),
    ]
    return "\n".join(rules)


def _may_be_calls(body: str, decoded: Any) -> bool:
    """Whether a fenced block is meant as calls: an object, or an array holding objects."""
    if decoded is None:
        return re.match(r"\s*(\{|\[\s*\{)", body) is not None
    if isinstance(decoded, list):
        return any(isinstance(item, dict) for item in decoded)
    return isinstance(decoded, dict)


def _leading_calls(body: str) -> list[Any]:
    """The whole call objects at the start of a list that was cut off, each once."""
    text = body.strip()
    if not text.startswith("["):
        return []
    decoder, position, found = json.JSONDecoder(), 1, []
    while True:
        while position < len(text) and text[position] in " \t\n\r,":
            position += 1
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            break
        if not isinstance(value, dict) or "name" not in value:
            return []
        if value not in found:
            found.append(value)
    return found


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _bare_objects(text: str) -> tuple[str, list[Any]]:
    """JSON calls (objects with a "name" key, or arrays of them) that start a line, bare or in
    parentheses; returns the text without them."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    kept: list[str] = []
    position = 0
    for match in re.finditer(r"(?m)^[ \t]*(\([ \t]*)?[\[{]", text):
        start = match.end() - 1
        if start < position:
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        items = value if isinstance(value, list) else [value]
        if items and all(isinstance(item, dict) and "name" in item for item in items):
            found.extend(items)
            kept.append(text[position : match.start(1) if match.group(1) else start])
            closing = re.match(r"[ \t]*\)", text[end:]) if match.group(1) else None
            position = end + (closing.end() if closing else 0)
    kept.append(text[position:])
    return "".join(kept), found
