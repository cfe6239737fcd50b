"""Bounds on what one server's tool list may take: per tool (size, depth) and per server (size).

A tool's definition goes into every prompt of every run. One tool with a 10,000-value enum, or
a schema nested a hundred levels, must cost that tool (unavailable, with a warning naming it),
never the server's other tools, and never the run. See docs/mcp-limits.md.
"""

from __future__ import annotations

import json
from typing import Any

from verity.tools.base import ToolSpec

__all__ = ["MAX_DEPTH", "TOO_DEEP", "ListBudget", "json_depth", "mark_deep_schemas", "tool_size"]

MAX_DEPTH = 64
"""Deepest JSON nesting of one tool's input schema (an object property costs two levels)."""
TOO_DEEP = "x-verity-too-deep"
"""Stands, with the depth, in place of a schema too deep to pass on (`mark_deep_schemas`)."""


def tool_size(spec: ToolSpec) -> int:
    """Bytes of the tool as the model is shown it: name, description and input schema."""
    shown = {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
    return len(json.dumps(shown, ensure_ascii=False).encode())


class ListBudget:
    """Admits one server's tools in list order while each, and all together, fit the bounds."""

    def __init__(self, *, max_tool_bytes: int, max_list_bytes: int) -> None:
        """Start an empty budget.

        Args:
            max_tool_bytes: Largest definition of one tool (`tool_size`).
            max_list_bytes: Largest sum over the server's admitted tools.
        """
        self._max_tool = max_tool_bytes
        self._max_list = max_list_bytes
        self.used = 0
        """Bytes taken by the tools admitted so far."""

    def problem(self, spec: ToolSpec) -> str | None:
        """Why the tool cannot be offered within the bounds; None: it fits (`take` counts it)."""
        marked = spec.parameters.get(TOO_DEEP)
        depth = marked if isinstance(marked, int) else json_depth(spec.parameters)
        if depth > MAX_DEPTH:
            return f"its input schema is nested {depth} levels deep, over the limit of {MAX_DEPTH}"
        size = tool_size(spec)
        if size > self._max_tool:
            limit = _kib(self._max_tool)
            return f"its definition takes {_kib(size)}, over the limit of {limit} per tool"
        if self.used + size > self._max_list:
            return (
                f"the server's tools before it already take {_kib(self.used)} of the "
                f"{_kib(self._max_list)} allowed per server"
            )
        return None

    def take(self, spec: ToolSpec) -> None:
        """Count an offered tool."""
        self.used += tool_size(spec)


def _kib(size: int) -> str:
    return f"{size / 1024:.1f} KiB"


def mark_deep_schemas(message: Any) -> None:
    """In a `tools/list` result, put a marker in place of each schema nested past `MAX_DEPTH`.

    For a message too deep for the SDK's JSON parser (200 levels): the marker keeps the tool
    (unavailable, with its depth) and lets the rest of the list through.
    """
    result = message.get("result") if isinstance(message, dict) else None
    tools = result.get("tools") if isinstance(result, dict) else None
    for tool in tools if isinstance(tools, list) else ():
        for key in ("inputSchema", "outputSchema"):
            if isinstance(tool, dict) and (depth := json_depth(tool.get(key))) > MAX_DEPTH:
                tool[key] = {"type": "object", TOO_DEEP: depth}


def json_depth(node: Any) -> int:
    """JSON nesting depth, without recursion (a schema may be deeper than Python's stack)."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in value)
    return deepest
