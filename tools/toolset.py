"""Toolsets, and the one place where a failing tool call becomes an error result for the model."""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import anyio
import pydantic

from verity.tools.base import FunctionTool, ToolError, ToolResult, ToolSpec

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS",
    "FunctionToolset",
    "ReportsProblems",
    "Toolset",
    "ToolsetNotOpenError",
    "call_tool",
    "toolset_problems",
]

DEFAULT_MAX_OUTPUT_CHARS = 16_000


class ToolsetNotOpenError(RuntimeError):
    """A toolset that needs `async with` (it starts servers) was used without it."""


@runtime_checkable
class Toolset(Protocol):
    """A source of tools: built-in functions, an MCP server, or a wrapper around another toolset."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def list_tools(self) -> list[ToolSpec]:
        """The tools on offer now."""
        ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call one tool; may raise, `call_tool()` below turns that into an error result."""
        ...


@runtime_checkable
class ReportsProblems(Protocol):
    """A toolset that can say which of its sources the model cannot use (`MCPToolset`)."""

    def problems(self) -> list[str]:
        """One line per source of tools that is configured but unusable, and why."""
        ...


def toolset_problems(toolsets: Iterable[object]) -> list[str]:
    """What the toolsets that report problems say is unusable, in order."""
    return [p for t in toolsets if isinstance(t, ReportsProblems) for p in t.problems()]


class FunctionToolset:
    """Python functions decorated with `@tool`."""

    def __init__(self, tools: Iterable[FunctionTool]) -> None:
        self._tools = {t.spec.name: t for t in tools}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def list_tools(self) -> list[ToolSpec]:
        """The specs of the wrapped functions."""
        return [t.spec for t in self._tools.values()]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run the function and render its return value as text.

        Raises:
            KeyError: no tool has this name.
        """
        value = await self._tools[name].call(arguments)
        if isinstance(value, ToolResult):
            return value
        if isinstance(value, str):
            return ToolResult(content=value)
        return ToolResult(content=json.dumps(value, default=str), structured=value)


async def call_tool(
    toolset: Toolset,
    name: str,
    arguments: dict[str, Any],
    *,
    time_limit: float,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> ToolResult:
    """Call a tool and never raise for the tool's own failure: the model gets an error result.

    A tool that raises, returns invalid output, or runs past `time_limit` seconds yields
    `ToolResult(is_error=True)` whose content says what failed and what to try. Cancellation
    of the caller is never swallowed.
    """
    result: ToolResult | None = None
    with anyio.move_on_after(time_limit):
        result = await _call_catching(toolset, name, arguments)
    if result is None:
        return ToolResult(
            content=f"Tool {name!r} timed out after {time_limit:g} s. Try simpler arguments, "
            "or answer without this tool.",
            is_error=True,
        )
    if len(result.content) > max_output_chars:
        cut = len(result.content) - max_output_chars
        content = f"{result.content[:max_output_chars]}\n[... {cut} more characters cut]"
        result = ToolResult(content=content, is_error=result.is_error, structured=result.structured)
    return result


async def _call_catching(toolset: Toolset, name: str, arguments: dict[str, Any]) -> ToolResult:
    available = [spec.name for spec in await toolset.list_tools()]
    if name not in available:
        return ToolResult(
            content=f"Unknown tool {name!r}. Available tools: {', '.join(available) or 'none'}.",
            is_error=True,
        )
    try:
        return await toolset.call_tool(name, arguments)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
            for err in exc.errors()
        )
        return ToolResult(content=f"Invalid arguments for {name!r}: {problems}.", is_error=True)
    except ToolError as exc:
        return ToolResult(content=f"Tool {name!r} failed: {exc}", is_error=True)
    except Exception as exc:  # noqa: BLE001 - the model gets every tool failure as data
        return ToolResult(
            content=f"Tool {name!r} raised {type(exc).__name__}: {exc}", is_error=True
        )
