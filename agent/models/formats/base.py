"""What every tool-call format provides, and the parts they share."""

from __future__ import annotations

import copy
import json
from typing import Any, Literal, Protocol

from verity.messages import Message, ToolCall
from verity.models._template import ChatTemplate
from verity.models.grammar import SchemaGrammar, schema_grammar
from verity.tools.base import ToolSpec
from verity.tools.schemas import validator_for

__all__ = [
    "CallStart",
    "ParsedCalls",
    "ToolCallFormat",
    "call_rules",
    "call_schema",
    "lark_literal",
    "tool_grammars",
    "validate_call",
]

WHITESPACE = r"[ \t\n]{0,24}"
"""Whitespace between the parts of a call: free but bounded (design D1)."""

CallStart = Literal["call", "text", "undecided"]


class ParsedCalls:
    """Calls found in a completion, the problems with invalid ones, and the remaining text."""

    def __init__(self, calls: list[ToolCall], invalid: list[str], content: str) -> None:
        self.calls = calls
        self.invalid = invalid
        self.content = content


class ToolCallFormat(Protocol):
    """How one model family writes tool calls."""

    name: str

    def render(self, template: ChatTemplate, messages: list[Message], tools: list[ToolSpec]) -> str:
        """The prompt for the next assistant turn, tools described the way the family expects."""
        ...

    def call_start(self, content: str) -> CallStart:
        """Decide from the start of the visible content whether the model is writing a call."""
        ...

    def find_call(self, content: str) -> int | None:
        """Where in `content` a call opens after some text (a complete opening marker), if it
        does: generation rolls back to there and continues under the grammar."""
        ...

    def grammar(self, tools: list[ToolSpec]) -> str:
        """A Lark grammar (llguidance syntax, `start` rule) that accepts one or more calls to
        `tools`, in this format, and nothing else."""
        ...

    def single_grammar(self, tools: list[ToolSpec]) -> str | None:
        """A Lark grammar for a call written again the model's own way after `grammar` produced
        a list of one (see `lone_call`); None when the format has no such list."""
        ...

    def lone_call(self, call_text: str) -> bool:
        """Whether `call_text` (written under `grammar`) has just closed a list holding one
        call."""
        ...

    def text_grammar(self) -> str:
        """A Lark grammar for a plain-text answer that cannot start a call (tool_choice "none")."""
        ...

    def parse(self, text: str, tools: list[ToolSpec], *, first_id: int) -> ParsedCalls:
        """Extract and validate the calls in `text`."""
        ...


def call_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """One JSON Schema for `{"name": ..., "arguments": ...}` over all tools.

    Each tool's `$defs` are hoisted to the top level under `<tool>__<def>` so that its local
    `#/$defs/...` references still resolve in the combined document.
    """
    defs: dict[str, Any] = {}
    alternatives = []
    for spec in tools:
        parameters = copy.deepcopy(spec.parameters)
        local_defs = parameters.pop("$defs", {}) | parameters.pop("definitions", {})
        renames = {name: f"{spec.name}__{name}" for name in local_defs}
        for name, definition in local_defs.items():
            defs[renames[name]] = _rewrite_refs(definition, renames)
        alternatives.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": spec.name},
                    "arguments": _rewrite_refs(parameters, renames) or {"type": "object"},
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema: dict[str, Any] = {"anyOf": alternatives}
    if defs:
        schema["$defs"] = defs
    return schema


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        result = {key: _rewrite_refs(value, renames) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str):
            for prefix in ("#/$defs/", "#/definitions/"):
                if ref.startswith(prefix) and ref[len(prefix) :] in renames:
                    result["$ref"] = "#/$defs/" + renames[ref[len(prefix) :]]
        return result
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def validate_call(
    payload: Any, tools: list[ToolSpec], call_id: str
) -> tuple[ToolCall | None, str | None]:
    """Check one decoded `{"name", "arguments"}` object against the offered tools.

    Returns the call, or a problem description written for the model to act on.
    """
    if not isinstance(payload, dict) or "name" not in payload:
        return None, 'A tool call must be a JSON object {"name": ..., "arguments": {...}}.'
    name = payload["name"]
    specs = {spec.name: spec for spec in tools}
    if name not in specs:
        return None, f"There is no tool named {name!r}. Available: {', '.join(specs) or 'none'}."
    arguments = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None, f"The arguments of {name!r} are not a JSON object."
    if not isinstance(arguments, dict):
        return None, f"The arguments of {name!r} must be a JSON object."
    try:
        validator = validator_for(specs[name].parameters)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    except (ValueError, RecursionError) as exc:  # the tool's fault, not the model's
        return None, f"The tool {name!r} cannot be called: its parameter schema is unusable: {exc}."
    if errors:
        problems = "; ".join(
            f"at {'/'.join(str(p) for p in error.path) or 'arguments'}: {error.message}"
            for error in errors[:3]
        )
        return None, f"Invalid arguments for {name!r} {problems}."
    return ToolCall(id=call_id, name=name, arguments=arguments), None


def tool_grammars(tools: list[ToolSpec]) -> dict[str, SchemaGrammar]:
    """Each tool's arguments grammar, as the ladder in `verity.models.grammar` chose it."""
    return {spec.name: schema_grammar(spec.parameters or {"type": "object"}) for spec in tools}


def call_rules(tools: list[ToolSpec], *, whitespace: str = "WS") -> list[str]:
    """Lark rules: `call` is one `{"name": ..., "arguments": ...}` object for any of `tools`.

    Each tool has its own `%json` arguments rule, so each is compiled as exactly (or as relaxed)
    as its own schema allows; `whitespace` names the rule between the object's parts.
    """
    ws = whitespace
    rules = ["call: " + " | ".join(f"call_{index}" for index in range(len(tools)))]
    for index, (name, grammar) in enumerate(tool_grammars(tools).items()):
        head = " ".join(
            [
                lark_literal("{"),
                ws,
                lark_literal('"name"'),
                ws,
                lark_literal(":"),
                ws,
                lark_literal(json.dumps(name, ensure_ascii=False)),
                ws,
                lark_literal(","),
                ws,
                lark_literal('"arguments"'),
                ws,
                lark_literal(":"),
                ws,
            ]
        )
        rules.append(f"call_{index}: {head} args_{index} {ws} {lark_literal('}')}")
        rules.append(f"args_{index}: {grammar.json_rule()}")
    return rules


def lark_literal(text: str) -> str:
    """`text` as a Lark string literal."""
    return json.dumps(text, ensure_ascii=False)
