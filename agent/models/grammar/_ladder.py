"""The grammar for one JSON Schema: exact where the engine can, else relaxed, else any object.

Rungs, first that compiles wins:
1. exact: the (bounded) schema compiles strictly, nothing ignored;
2. relaxed: compiled leniently (llguidance skips what it does not implement, and says so);
3. relaxed: also without the keywords engines commonly refuse (regex features such as
   look-around, `format`, `not`, conditionals, unevaluated*, uniqueness, ...);
4. relaxed: only the shape (types, properties, items, required, enum/const, anyOf, refs);
5. any: any JSON object (or any JSON value for a non-tool schema).
What a rung drops is reported (trace, `verity mcp list`); the call is always validated against
the original schema afterwards, and an invalid one goes back to the model as a retry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from llguidance import LLMatcher

from verity.models.grammar._bounds import bound_schema
from verity.models.grammar._engine import LIMITS
from verity.models.grammar._walk import rewrite

__all__ = ["JSON_WHITESPACE", "SchemaGrammar", "schema_grammar"]

Level = Literal["exact", "relaxed", "any"]

JSON_WHITESPACE = "[ \\t\\n]{0,24}"
"""Free but bounded whitespace: compact JSON pushed small models off their natural layout, and
unbounded whitespace lets them loop on newlines."""

_HARD = frozenset(
    {
        "pattern",
        "patternProperties",
        "format",
        "not",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "dependentRequired",
        "dependencies",
        "propertyNames",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "$dynamicRef",
        "$dynamicAnchor",
        "$recursiveRef",
        "$recursiveAnchor",
        "contentSchema",
        "allOf",
    }
)
_SHAPE = frozenset(
    {
        "type",
        "properties",
        "items",
        "prefixItems",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "$ref",
        "$defs",
        "definitions",
        "$id",
        "$anchor",
        "$schema",
    }
)
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
        "$vocabulary",
    }
)
"""Keywords that constrain nothing: dropping them is not worth reporting."""
_PLAIN_WORDS = frozenset(
    {
        "not",
        "if",
        "then",
        "else",
        "type",
        "items",
        "required",
        "const",
        "properties",
        "contains",
        "format",
    }
)
_KEYWORD_IN_MESSAGE = re.compile(
    r"\b(" + "|".join(map(re.escape, sorted((_HARD | _SHAPE) - _PLAIN_WORDS))) + r")\b"
)
_KNOWN_DIALECT = re.compile(r"^https?://json-schema\.org/")


@dataclass(frozen=True)
class SchemaGrammar:
    """How the grammar of one schema follows it."""

    level: Level
    schema: Any
    """The schema the grammar is compiled from (bounded, maybe relaxed), without options."""
    dropped: tuple[str, ...] = ()
    """Keywords the grammar does not enforce (post-validation still does)."""
    reason: str = ""
    """The engine's own words on why the schema could not be taken exactly."""
    options: dict[str, Any] = field(default_factory=dict)
    """llguidance JSON options (`x-guidance`) the grammar is compiled with."""

    def json_rule(self) -> str:
        """The Lark `%json {...}` expression for this grammar."""
        return f"%json {json.dumps(self.compiled_schema(), ensure_ascii=False)}"

    def compiled_schema(self) -> Any:
        """The schema with its llguidance options, exactly as compiled."""
        schema = {} if self.schema is True else self.schema
        if not isinstance(schema, dict):
            return schema
        return {**schema, "x-guidance": self.options}


def schema_grammar(schema: Any, *, root_object: bool = True) -> SchemaGrammar:
    """Climb the ladder for `schema`; `root_object` makes the last rung an object (tool calls).

    Never raises: a schema no rung accepts ends at "any".
    """
    try:
        key = json.dumps(schema, sort_keys=False)
    except (TypeError, ValueError, RecursionError):
        return _any(root_object, "the schema is not JSON")
    return _climb(key, root_object)


@lru_cache(maxsize=1024)
def _climb(key: str, root_object: bool) -> SchemaGrammar:
    schema = json.loads(key)
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if k != "x-guidance"}  # ours to set
        if not _KNOWN_DIALECT.match(str(schema.get("$schema", "https://json-schema.org/"))):
            del schema["$schema"]  # a custom metaschema: nothing here can fetch it
    bounded, capped = bound_schema(schema)
    strict = {"whitespace_pattern": JSON_WHITESPACE}
    lenient = {**strict, "lenient": True}
    error, _ = _compile(bounded, strict)
    if error is None:
        if not capped:
            return SchemaGrammar("exact", bounded, (), "", strict)
        why = f"past Verity's bounds on what reaches the engine: {', '.join(capped)}"
        return SchemaGrammar("relaxed", bounded, tuple(capped), why, strict)
    reason = error
    lenient_error, warnings = _compile(bounded, lenient)
    if lenient_error is None:
        dropped = capped + (_keywords(warnings) or _keywords([error]) or ["(engine-specific)"])
        return SchemaGrammar("relaxed", bounded, _unique(dropped), reason, lenient)
    for keep in (lambda key: key not in _HARD, lambda key: key in _SHAPE):
        relaxed, removed = _only(bounded, keep)
        relaxed_error, warnings = _compile(relaxed, lenient)
        if relaxed_error is None:
            dropped = capped + removed + _keywords(warnings)
            return SchemaGrammar("relaxed", relaxed, _unique(dropped), reason, lenient)
    return _any(root_object, reason)


def _any(root_object: bool, reason: str) -> SchemaGrammar:
    schema: dict[str, Any] = {"type": "object"} if root_object else {}
    options = {"whitespace_pattern": JSON_WHITESPACE}
    return SchemaGrammar("any", schema, ("*",), reason, options)


def _compile(schema: Any, options: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(error or None, warnings) of compiling `schema` with llguidance, tokenizer-free."""
    compiled = SchemaGrammar("exact", schema, options=options).compiled_schema()
    try:
        grammar = LLMatcher.grammar_from_json_schema(compiled)
    except ValueError as exc:
        return str(exc), []
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, None, limits=LIMITS)
    if is_error:
        return (messages[0] if messages else "the engine refused the schema"), []
    return None, messages


def _only(schema: Any, keep: Any) -> tuple[Any, list[str]]:
    """`schema` with only the keywords `keep` accepts, and the ones removed."""
    removed: set[str] = set()

    def edit(node: dict[str, Any], depth: int) -> dict[str, Any]:
        for key in [k for k in node if not keep(k)]:
            if key not in _ANNOTATIONS:
                removed.add(key)
            del node[key]
        if "oneOf" in node and "anyOf" not in node:  # shape only: a union is the closest
            node["anyOf"] = node.pop("oneOf")
        return node

    return rewrite(schema, edit, max_depth=64), sorted(removed)


def _keywords(messages: list[str]) -> list[str]:
    """Keywords named in llguidance's warnings ("Unimplemented keys: [...]", formats, ...)."""
    found: list[str] = []
    for message in messages:
        listed = re.search(r"Unimplemented keys: (\[.*?\])", message)
        if listed:
            try:
                found.extend(str(key) for key in json.loads(listed.group(1)))
            except json.JSONDecodeError:
                pass
        if "coerce_one_of" in message:
            found.append("oneOf")
            continue
        if "format" in message.lower():
            found.append("format")
        found.extend(match.group(1) for match in _KEYWORD_IN_MESSAGE.finditer(message))
    return found


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))
