"""`call_tool`, the one error boundary: every tool failure reaches the model as an error result."""

from __future__ import annotations

import threading
from typing import Any

import anyio

from verity.tools.base import ToolError, ToolResult, tool
from verity.tools.toolset import DEFAULT_MAX_OUTPUT_CHARS, FunctionToolset, Toolset, call_tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


@tool
def echo(text: str) -> str:
    """Return the text unchanged.

    Args:
        text: What to echo.
    """
    return text


@tool
def explode(reason: str) -> str:
    """Always fails with a programming error.

    Args:
        reason: The error message.
    """
    raise RuntimeError(reason)


@tool
def refuse(reason: str) -> str:
    """Always fails the way a tool reports a problem to the model.

    Args:
        reason: The error message.
    """
    raise ToolError(reason)


@tool
async def nap(seconds: float) -> str:
    """Sleep, then wake up.

    Args:
        seconds: How long to sleep.
    """
    await anyio.sleep(seconds)
    return "awake"


@tool
def report(city: str) -> dict[str, Any]:
    """Return structured weather.

    Args:
        city: Where.
    """
    return {"city": city, "temperature": 21.5, "tags": ["sunny"]}


@tool
def verdict(ok: bool) -> ToolResult:
    """Return a ready-made result.

    Args:
        ok: Whether the result is a success.
    """
    return ToolResult(content="checked", is_error=not ok)


TOOLSET = FunctionToolset([add, echo, explode, refuse, nap, report, verdict])


async def test_function_toolset_is_a_toolset_listing_its_specs() -> None:
    assert isinstance(TOOLSET, Toolset)
    with anyio.fail_after(5):
        async with TOOLSET as toolset:
            specs = await toolset.list_tools()
    assert specs == [t.spec for t in (add, echo, explode, refuse, nap, report, verdict)]


async def test_call_tool_returns_the_text_of_a_successful_call() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "echo", {"text": "hello"}, time_limit=5)
    assert result == ToolResult(content="hello")


async def test_call_tool_renders_non_string_values_as_json_and_keeps_them_structured() -> None:
    with anyio.fail_after(5):
        number = await call_tool(TOOLSET, "add", {"a": 2, "b": 3}, time_limit=5)
        weather = await call_tool(TOOLSET, "report", {"city": "Oslo"}, time_limit=5)
    assert number == ToolResult(content="5", structured=5)
    assert weather == ToolResult(
        content='{"city": "Oslo", "temperature": 21.5, "tags": ["sunny"]}',
        structured={"city": "Oslo", "temperature": 21.5, "tags": ["sunny"]},
    )


async def test_call_tool_passes_a_returned_tool_result_through() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "verdict", {"ok": False}, time_limit=5)
    assert result == ToolResult(content="checked", is_error=True)


async def test_call_tool_returns_is_error_when_tool_raises() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "explode", {"reason": "disk on fire"}, time_limit=5)
    assert result == ToolResult(
        content="Tool 'explode' raised RuntimeError: disk on fire", is_error=True
    )


async def test_call_tool_returns_is_error_with_the_tool_error_message() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "refuse", {"reason": "No such city."}, time_limit=5)
    assert result == ToolResult(content="Tool 'refuse' failed: No such city.", is_error=True)


async def test_call_tool_returns_is_error_naming_the_invalid_argument() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "add", {"a": 2, "b": "three"}, time_limit=5)
    assert result == ToolResult(
        content="Invalid arguments for 'add': b: Input should be a valid integer, "
        "unable to parse string as an integer.",
        is_error=True,
    )


async def test_call_tool_returns_is_error_naming_missing_and_unexpected_arguments() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "add", {"a": 2, "c": 3}, time_limit=5)
    assert result.is_error
    assert "b: Field required" in result.content
    assert "c: Extra inputs are not permitted" in result.content


async def test_call_tool_returns_is_error_listing_the_available_tools_for_an_unknown_name() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "subtract", {"a": 2, "b": 3}, time_limit=5)
    assert result == ToolResult(
        content="Unknown tool 'subtract'. Available tools: "
        "add, echo, explode, refuse, nap, report, verdict.",
        is_error=True,
    )


async def test_call_tool_says_none_are_available_in_an_empty_toolset() -> None:
    with anyio.fail_after(5):
        result = await call_tool(FunctionToolset([]), "add", {}, time_limit=5)
    assert result.is_error
    assert result.content.endswith("Available tools: none.")


async def test_call_tool_returns_is_error_when_an_async_tool_times_out() -> None:
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "nap", {"seconds": 10}, time_limit=0.2)
    assert result == ToolResult(
        content="Tool 'nap' timed out after 0.2 s. Try simpler arguments, "
        "or answer without this tool.",
        is_error=True,
    )


async def test_call_tool_returns_is_error_when_a_sync_tool_times_out() -> None:
    release = threading.Event()

    @tool
    def block() -> str:
        """Block the worker thread until the test releases it."""
        release.wait(10)
        return "released"

    try:
        with anyio.fail_after(5):
            result = await call_tool(FunctionToolset([block]), "block", {}, time_limit=0.2)
    finally:
        release.set()  # let the abandoned worker thread finish
    assert result.is_error
    assert result.content.startswith("Tool 'block' timed out after 0.2 s.")


async def test_call_tool_cuts_output_longer_than_the_limit_with_a_note() -> None:
    with anyio.fail_after(5):
        result = await call_tool(
            TOOLSET, "echo", {"text": "x" * 25}, time_limit=5, max_output_chars=10
        )
    assert result == ToolResult(content="xxxxxxxxxx\n[... 15 more characters cut]")


async def test_call_tool_keeps_output_up_to_the_default_limit() -> None:
    text = "y" * DEFAULT_MAX_OUTPUT_CHARS
    with anyio.fail_after(5):
        result = await call_tool(TOOLSET, "echo", {"text": text}, time_limit=5)
    assert result == ToolResult(content=text)


async def test_call_tool_cuts_error_output_and_keeps_the_error_flag() -> None:
    with anyio.fail_after(5):
        result = await call_tool(
            TOOLSET, "refuse", {"reason": "z" * 100}, time_limit=5, max_output_chars=20
        )
    assert result == ToolResult(
        content="Tool 'refuse' failed\n[... 102 more characters cut]", is_error=True
    )


async def test_call_tool_does_not_swallow_cancellation_of_the_caller() -> None:
    result: ToolResult | None = None
    with anyio.fail_after(5):
        with anyio.move_on_after(0.1) as scope:
            result = await call_tool(TOOLSET, "nap", {"seconds": 10}, time_limit=5)
    assert scope.cancelled_caught
    assert result is None


async def test_call_tool_does_not_swallow_cancellation_of_a_task_group() -> None:
    finished: list[ToolResult] = []

    async def call() -> None:
        finished.append(await call_tool(TOOLSET, "nap", {"seconds": 10}, time_limit=5))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()
    assert finished == []
