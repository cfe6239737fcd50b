"""Caps on what a schema may ask of the grammar engine, applied before any native code runs.

A `maxLength` of 32767 became a 32767-fold repetition that overflowed llama.cpp's GBNF parser
stack (SIGSEGV); enormous enums, patterns and nesting cost compile time and memory in any
engine. Each bound past its cap is dropped from the grammar's copy of the schema (the call is
still validated against the original afterwards), and the dropped keyword is reported.
"""

from __future__ import annotations

from typing import Any

from verity.models.grammar._walk import rewrite

__all__ = ["MAX_DEPTH", "MAX_ENUM", "MAX_LENGTH", "MAX_COUNT", "MAX_PATTERN", "bound_schema"]

MAX_LENGTH = 2048
"""Largest `minLength` / `maxLength` kept."""
MAX_COUNT = 256
"""Largest item, property and `contains` count kept (`minItems`, `maxProperties`, ...)."""
MAX_ENUM = 1024
"""Most `enum` values kept."""
MAX_PATTERN = 1024
"""Longest `pattern` (and `patternProperties` key) kept, in characters."""
MAX_DEPTH = 48
"""Deepest subschema kept; anything below is left unconstrained."""

_LENGTHS = ("minLength", "maxLength")
_COUNTS = ("minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains")


def bound_schema(schema: Any) -> tuple[Any, list[str]]:
    """`schema` within the caps above, and the keywords dropped to get there (sorted, unique)."""
    dropped: set[str] = set()

    def edit(node: dict[str, Any], depth: int) -> dict[str, Any]:
        for key in (*_LENGTHS, *_COUNTS):
            value = node.get(key)
            if isinstance(value, float) and value.is_integer():
                node[key] = int(value)  # 2.0 is a valid count; engines want 2
        for key in _LENGTHS:
            if _over(node.get(key), MAX_LENGTH):
                del node[key]
                dropped.add(key)
        for key in _COUNTS:
            if _over(node.get(key), MAX_COUNT):
                del node[key]
                dropped.add(key)
        enum = node.get("enum")
        if isinstance(enum, list) and len(enum) > MAX_ENUM:
            del node["enum"]
            dropped.add("enum")
        pattern = node.get("pattern")
        if isinstance(pattern, str) and len(pattern) > MAX_PATTERN:
            del node["pattern"]
            dropped.add("pattern")
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and any(len(key) > MAX_PATTERN for key in patterns):
            node["patternProperties"] = {k: v for k, v in patterns.items() if len(k) <= MAX_PATTERN}
            dropped.add("patternProperties")
        return node

    bounded = rewrite(schema, edit, max_depth=MAX_DEPTH)
    if _truncated(schema, bounded):
        dropped.add(f"subschemas nested deeper than {MAX_DEPTH}")
    return bounded, sorted(dropped)


def _over(value: Any, cap: int) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > cap


def _truncated(original: Any, bounded: Any) -> bool:
    """Whether the walk cut a subschema (a schema object became `True`)."""
    stack = [(original, bounded)]
    while stack:
        before, after = stack.pop()
        if isinstance(before, dict) and after is True:
            return True
        if isinstance(before, dict) and isinstance(after, dict):
            stack.extend((before[k], after[k]) for k in before if k in after)
        elif isinstance(before, list) and isinstance(after, list):
            stack.extend(zip(before, after, strict=False))
    return False
