"""Which tool results are failures: marked as errors, or an error's text returned as a result."""

from __future__ import annotations

import re

from verity.messages import ToolCall
from verity.tools.base import ToolResult

__all__ = ["failed", "failures", "only_failures"]

_ERROR_TEXT = re.compile(
    r"^\W*(?:(?:[a-z]+[ _]){0,2}(?:error|exception)\b[^\n:]{0,40}:"
    r"|(?:\w+(?:error|exception))\s*:|traceback \(most recent call last\))",
    re.IGNORECASE,
)
"""A result that is an error message: `Error: ...`, `Database error: ...`, `McpError: ...`,
`Error executing tool x: ...`, a Python traceback. Some servers (the reference SQLite server
among them) return their errors this way, as an ordinary result."""
_MAX_ERROR_TEXT = 2000
"""Longer results are data, even when they start like an error (a log file read whole)."""


def failed(result: ToolResult) -> bool:
    """Whether `result` says its call failed: marked as an error, or an error's text."""
    if result.is_error:
        return True
    text = result.content.strip()
    return len(text) <= _MAX_ERROR_TEXT and _ERROR_TEXT.match(text) is not None


def failures(
    evidence: list[tuple[ToolCall, ToolResult]],
) -> list[tuple[ToolCall, ToolResult]]:
    """The calls of `evidence` that failed, in order."""
    return [(call, result) for call, result in evidence if failed(result)]


def only_failures(evidence: list[tuple[ToolCall, ToolResult]]) -> bool:
    """Whether the run called tools and every call failed: nothing a tool returned is data."""
    return bool(evidence) and all(failed(result) for _, result in evidence)
