"""What every tool-call format provides, and the parts they share."""

from __future__ import annotations

import copy
import json
from typing import Any, Literal, Protocol

import jsonschema
from llama_cpp.llama_grammar import SchemaConverter

from verity.messages import Message, ToolCall
from verity.models._template import ChatTemplate
from verity.tools.base import ToolSpec

__all__ = [
    "CallStart",
    "ParsedCalls",
    "ToolCallFormat",
    "call_schema",
    "json_grammar_rules",
    "validate_call",
]

WHITESPACE = r"[ \t\n]{0,24}"
_JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'

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
        """GBNF that accepts one or more calls to `tools`, in this format, and nothing else."""
        ...

    def text_grammar(self) -> str:
        """GBNF for a plain-text answer that cannot start a call (tool_choice "none")."""
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
    validator = jsonschema.Draft202012Validator(specs[name].parameters)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        problems = "; ".join(
            f"at {'/'.join(str(p) for p in error.path) or 'arguments'}: {error.message}"
            for error in errors[:3]
        )
        return None, f"Invalid arguments for {name!r} {problems}."
    return ToolCall(id=call_id, name=name, arguments=arguments), None


def json_grammar_rules(schemas: dict[str, dict[str, Any]]) -> str:
    """GBNF rules named after the keys of `schemas`, each accepting JSON valid for its schema.

    Whitespace is free (up to 24 characters) because the converter's compact `" "?` separator
    pushes models off their natural layout; raw control characters are refused inside strings
    because they make the JSON invalid.
    """
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    for rule_name, schema in schemas.items():
        converter.visit(converter.resolve_refs(schema, rule_name), rule_name)
    converter._rules["space"] = WHITESPACE
    if "char" in converter._rules:
        converter._rules["char"] = _JSON_CHAR
    return str(converter.format_grammar())
