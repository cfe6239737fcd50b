"""Tool dispatch for the loop: which toolset serves each tool, and answering one turn's calls."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager

import anyio

from verity.errors import UserError
from verity.hooks import ApprovalDecided, RunHooks, ToolCallEnded, ToolCallStarted
from verity.messages import ToolCall
from verity.settings import RunSettings
from verity.tools.approval import ApprovalDecision, reporting_approvals
from verity.tools.base import ToolResult, ToolSpec, is_read_only
from verity.tools.schemas import schema_problem
from verity.tools.toolset import Toolset, ToolsetNotOpenError, call_tool

__all__ = ["CallMemory", "Owners", "in_call_order", "may_reuse", "run_tools", "tool_owners"]

_log = logging.getLogger("verity")

Owners = dict[str, tuple[ToolSpec, Toolset]]
"""Each offered tool's name, with its spec and the toolset that serves it."""


def _approvals_to(hooks: RunHooks, run_id: str, step: int) -> AbstractContextManager[None]:
    async def report(decision: ApprovalDecision) -> None:
        await hooks.on_approval(ApprovalDecided(run_id=run_id, step=step, decision=decision))

    return reporting_approvals(report)


async def tool_owners(
    toolsets: Sequence[Toolset],
    *,
    hooks: RunHooks | None = None,
    run_id: str = "",
    step: int = 0,
) -> Owners:
    """Map each tool name to its spec and toolset; tools withheld for approval go to `hooks`.

    A tool whose parameter schema jsonschema cannot use is left out, with a warning (the MCP
    toolset already leaves such tools out).

    Raises:
        UserError: two toolsets offer the same tool name, or one is not open.
    """
    owners: Owners = {}
    for toolset in toolsets:
        try:
            if hooks is None:
                specs = await toolset.list_tools()
            else:
                with _approvals_to(hooks, run_id, step):
                    specs = await toolset.list_tools()
        except ToolsetNotOpenError as exc:
            raise UserError(str(exc), field="toolsets") from None
        for spec in specs:
            if (problem := schema_problem(spec.parameters)) is not None:
                _log.warning("tool %r is unavailable: %s", spec.name, problem)
                continue
            if spec.name in owners:
                raise UserError(
                    f"Two toolsets offer a tool named {spec.name!r}; rename or prefix one.",
                    field="toolsets",
                )
            owners[spec.name] = (spec, toolset)
    return owners


async def run_tools(
    run_id: str,
    step: int,
    calls: list[ToolCall],
    owners: Owners,
    settings: RunSettings,
    hooks: RunHooks,
) -> list[ToolResult]:
    """Run the calls concurrently; results come back in call order, failures as error results."""
    results: list[ToolResult | None] = [None] * len(calls)

    async def run_one(index: int, call: ToolCall) -> None:
        await hooks.on_tool_start(ToolCallStarted(run_id=run_id, step=step, call=call))
        started = time.perf_counter()
        if call.name in owners:
            with _approvals_to(hooks, run_id, step):  # approval decisions go into the trace
                result = await call_tool(
                    owners[call.name][1],
                    call.name,
                    call.arguments,
                    time_limit=settings.tool_timeout,
                    max_output_chars=settings.max_tool_output_chars,
                )
        else:
            result = ToolResult(content=f"Unknown tool {call.name!r}.", is_error=True)
        results[index] = result
        duration_s = time.perf_counter() - started
        await hooks.on_tool_end(
            ToolCallEnded(run_id=run_id, step=step, call=call, result=result, duration_s=duration_s)
        )

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(run_one, index, call)
    return [r for r in results if r is not None]


def may_reuse(spec: ToolSpec) -> bool:
    """Whether an earlier result of this tool may answer an identical later call.

    Only for tools read-only by Verity's trust rule (`is_read_only`: Python tools declare it, MCP
    annotations count only from a trusted server). Every other call runs again: avoiding
    repeats must never change what a tool does.
    """
    return is_read_only(spec)


class CallMemory:
    """The calls a run made, by tool name and arguments, with the results that may be reused."""

    def __init__(self) -> None:
        self._results: dict[str, ToolResult] = {}
        self._made: set[str] = set()

    def repeats(self, calls: list[ToolCall]) -> bool:
        """Whether every one of `calls` was made before, with the same arguments."""
        return all(_call_key(call) in self._made for call in calls)

    def recall(self, calls: list[ToolCall], owners: Owners) -> dict[int, ToolResult]:
        """Earlier results that answer some of `calls`, by the call's position."""
        return {
            index: self._results[_call_key(call)]
            for index, call in enumerate(calls)
            if _call_key(call) in self._results and _reusable(call, owners)
        }

    def remember(self, calls: list[ToolCall], results: list[ToolResult], owners: Owners) -> None:
        """Note the calls made, and keep the results that may answer a later identical call."""
        for call, result in zip(calls, results, strict=True):
            self._made.add(_call_key(call))
            if not result.is_error and _reusable(call, owners):
                self._results[_call_key(call)] = result


def in_call_order(
    count: int, recalled: dict[int, ToolResult], ran: list[ToolResult]
) -> list[ToolResult]:
    """The answers to a turn's `count` calls: recalled ones at their positions, `ran` between."""
    fresh = iter(ran)
    return [recalled[i] if i in recalled else next(fresh) for i in range(count)]


def _reusable(call: ToolCall, owners: Owners) -> bool:
    return call.name in owners and may_reuse(owners[call.name][0])


def _call_key(call: ToolCall) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True)
