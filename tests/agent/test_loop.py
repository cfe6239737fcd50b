"""Loop sequencing with a scripted model: limits, parallel calls, errors as data, retries."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from verity import (
    FinalStep,
    Message,
    ModelResponse,
    ModelStep,
    RunLimitExceeded,
    RunSettings,
    ToolStep,
    UserError,
    VerifyStep,
    iter_run,
    run,
    run_sync,
)
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import FunctionTool, ToolResult, ToolSpec, tool
from verity.tools.toolset import FunctionToolset


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why.
    """
    raise RuntimeError(reason)


async def test_run_returns_the_answer_after_a_tool_call() -> None:
    model = ScriptedModel([calls(("add", {"a": 2, "b": 3})), answer("5")])
    with anyio.fail_after(5):
        result = await run("2+3?", model=model, toolsets=[FunctionToolset([add])])
    assert result.answer == "5"
    assert result.verified is None  # no verifier ran
    kinds = [type(step) for step in result.steps]
    assert kinds == [ModelStep, ToolStep, ModelStep, VerifyStep, FinalStep]
    tool_step = result.steps[1]
    assert isinstance(tool_step, ToolStep)
    assert tool_step.results == [ToolResult(content="5", structured=5)]
    last_messages, _ = model.requests[1]
    assert last_messages[-1].role == "tool"
    assert last_messages[-1].content.startswith("5\n\n")
    model.assert_complete()


async def test_parallel_calls_run_concurrently_and_results_keep_call_order() -> None:
    both_started = anyio.Event()
    started: list[str] = []

    @tool
    async def slow(name: str, delay: float) -> str:
        """Wait, then echo.

        Args:
            name: Echoed.
            delay: Seconds.
        """
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await both_started.wait()  # deadlocks unless both calls run at once
        await anyio.sleep(delay)
        return name

    model = ScriptedModel(
        [
            calls(
                ("slow", {"name": "first", "delay": 0.2}), ("slow", {"name": "second", "delay": 0})
            ),
            answer("done"),
        ]
    )
    with anyio.fail_after(5):
        result = await run("go", model=model, toolsets=[FunctionToolset([slow])])
    tool_step = result.steps[1]
    assert isinstance(tool_step, ToolStep)
    assert [r.content for r in tool_step.results] == ["first", "second"]
    model.assert_complete()


async def test_tool_errors_reach_the_model_as_error_results() -> None:
    model = ScriptedModel([calls(("explode", {"reason": "disk on fire"})), answer("sorry")])
    with anyio.fail_after(5):
        # the answer checks would refuse any answer after only failed calls: not what this tests
        result = await run(
            "x",
            model=model,
            toolsets=[FunctionToolset([explode])],
            settings=RunSettings(check_answers=False),
        )
    assert result.answer == "sorry"
    tool_step = result.steps[1]
    assert isinstance(tool_step, ToolStep)
    assert tool_step.results == [
        ToolResult(content="Tool 'explode' raised RuntimeError: disk on fire", is_error=True)
    ]
    messages, _ = model.requests[1]
    assert messages[-1].content.startswith("Error: Tool 'explode' raised RuntimeError")
    model.assert_complete()


async def test_tool_timeout_becomes_an_error_result() -> None:
    @tool
    async def hang() -> str:
        """Never returns."""
        await anyio.sleep(60)
        return "never"

    model = ScriptedModel([calls(("hang", {})), answer("gave up")])
    with anyio.fail_after(5):
        result = await run(
            "x",
            model=model,
            toolsets=[FunctionToolset([hang])],
            settings=RunSettings(tool_timeout=0.2, check_answers=False),
        )
    tool_step = result.steps[1]
    assert isinstance(tool_step, ToolStep)
    assert tool_step.results[0].is_error
    assert "timed out after 0.2 s" in tool_step.results[0].content
    model.assert_complete()


async def test_max_steps_exhausted_raises_with_the_run_id() -> None:
    model = ScriptedModel([calls(("add", {"a": 1, "b": 1})), calls(("add", {"a": 2, "b": 2}))])
    with anyio.fail_after(5), pytest.raises(RunLimitExceeded) as caught:
        await run(
            "loop",
            model=model,
            toolsets=[FunctionToolset([add])],
            settings=RunSettings(max_steps=2),
            run_id="run-1",
        )
    assert caught.value.max_steps == 2
    assert caught.value.trace_id == "run-1"
    model.assert_complete()


async def test_invalid_calls_become_a_retry_message() -> None:
    invalid = ModelResponse(raw="{}", invalid_calls=["There is no tool named 'mul'."])
    model = ScriptedModel([invalid, answer("4")])
    with anyio.fail_after(5):
        result = await run("2*2", model=model, toolsets=[FunctionToolset([add])])
    assert result.answer == "4"
    messages, _ = model.requests[1]
    assert messages[-1] == Message(
        role="user",
        content="Your tool call was invalid: There is no tool named 'mul'. Call the tool again "
        "with valid arguments, or answer in plain text.",
    )
    model.assert_complete()


async def test_truncated_answer_is_not_accepted() -> None:
    cut = ModelResponse(content="The answer is", raw="The answer is", finish_reason="length")
    model = ScriptedModel([cut, answer("42")])
    with anyio.fail_after(5):
        result = await run("x", model=model)
    assert result.answer == "42"
    model.assert_complete()


def counter(*, read_only: bool) -> tuple[FunctionTool, list[int]]:
    counted: list[int] = []

    @tool(read_only=read_only)
    def count() -> int:
        """Count calls."""
        counted.append(1)
        return len(counted)

    return count, counted


def tool_contents(messages: list[Message]) -> list[str]:
    return [m.content.split("\n\n")[0] for m in messages if m.role == "tool"]


async def test_a_counter_called_again_in_a_later_turn_runs_again_and_reads_2() -> None:
    count, counted = counter(read_only=False)
    model = ScriptedModel([calls(("count", {})), calls(("count", {})), answer("2")])
    with anyio.fail_after(5):
        result = await run("count twice", model=model, toolsets=[FunctionToolset([count])])
    assert counted == [1, 1]
    repeat_step = result.steps[3]
    assert isinstance(repeat_step, ToolStep)
    assert repeat_step.results == [ToolResult(content="2", structured=2)]
    assert tool_contents(model.requests[2][0]) == ["1", "2"]
    assert model.tool_choices == ["auto", "auto", "none"]  # it ran; then answer, not loop
    model.assert_complete()


async def test_identical_calls_in_one_turn_each_get_their_own_result() -> None:
    count, counted = counter(read_only=False)
    model = ScriptedModel([calls(("count", {}), ("count", {})), answer("2")])
    with anyio.fail_after(5):
        await run("count twice", model=model, toolsets=[FunctionToolset([count])])
    assert counted == [1, 1]
    assert sorted(tool_contents(model.requests[1][0])) == ["1", "2"]
    model.assert_complete()


async def test_a_repeated_read_only_call_is_answered_again_and_the_next_turn_must_answer() -> None:
    count, counted = counter(read_only=True)
    model = ScriptedModel([calls(("count", {})), calls(("count", {})), answer("1")])
    with anyio.fail_after(5):
        result = await run("count", model=model, toolsets=[FunctionToolset([count])])
    assert counted == [1]
    assert result.answer == "1"
    repeat_step = result.steps[3]
    assert isinstance(repeat_step, ToolStep)
    assert repeat_step.calls == []
    assert tool_contents(model.requests[2][0]) == ["1", "1"]
    assert model.tool_choices == ["auto", "auto", "none"]
    model.assert_complete()


class UntrustedCounter:
    """A toolset whose tool claims to be read-only, from a source nobody said to trust."""

    def __init__(self) -> None:
        self.calls = 0

    async def __aenter__(self) -> UntrustedCounter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def list_tools(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="count",
                description="Count calls.",
                read_only=True,
                trusted=False,
                parameters={"type": "object", "properties": {}},
            )
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        self.calls += 1
        return ToolResult(content=str(self.calls))


async def test_an_untrusted_read_only_claim_does_not_replay_an_earlier_result() -> None:
    counter = UntrustedCounter()
    model = ScriptedModel([calls(("count", {})), calls(("count", {})), answer("2")])
    with anyio.fail_after(5):
        await run("count twice", model=model, toolsets=[counter])
    assert counter.calls == 2
    assert tool_contents(model.requests[2][0]) == ["1", "2"]
    assert model.tool_choices == ["auto", "auto", "none"]  # it ran; then answer, not loop
    model.assert_complete()


async def test_a_failed_read_only_call_is_run_again_when_repeated() -> None:
    attempts: list[int] = []

    @tool(read_only=True)
    def flaky() -> str:
        """Fails the first time."""
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("busy")
        return "ok"

    model = ScriptedModel([calls(("flaky", {})), calls(("flaky", {})), answer("ok")])
    with anyio.fail_after(5):
        await run("try", model=model, toolsets=[FunctionToolset([flaky])])
    assert attempts == [1, 1]
    assert model.tool_choices == ["auto", "auto", "none"]  # it ran; then answer, not loop
    model.assert_complete()


async def test_iter_run_yields_steps_as_they_happen() -> None:
    model = ScriptedModel([answer("hi")])
    with anyio.fail_after(5):
        steps = [step async for step in iter_run("hello", model=model)]
    assert steps[-1].model_copy(update={"messages": []}) == FinalStep(
        step=1, answer="hi", verified=None
    )
    model.assert_complete()


async def test_empty_task_is_a_user_error() -> None:
    model = ScriptedModel([])
    with pytest.raises(UserError) as caught:
        await run("   ", model=model)
    assert caught.value.field == "task"
    model.assert_complete()


async def test_colliding_tool_names_are_a_user_error() -> None:
    model = ScriptedModel([])
    with pytest.raises(UserError) as caught:
        await run("x", model=model, toolsets=[FunctionToolset([add]), FunctionToolset([add])])
    assert caught.value.message == ("Two toolsets offer a tool named 'add'; rename or prefix one.")
    model.assert_complete()


async def test_valid_calls_run_and_invalid_ones_in_the_same_turn_get_a_retry_message() -> None:
    mixed = calls(("add", {"a": 1, "b": 2})).model_copy(
        update={"invalid_calls": ["There is no tool named 'mul'."]}
    )
    model = ScriptedModel([mixed, answer("3")])
    with anyio.fail_after(5):
        result = await run("1+2", model=model, toolsets=[FunctionToolset([add])])
    messages, _ = model.requests[1]
    assert [m.role for m in messages[-2:]] == ["tool", "user"]
    assert messages[-1].content.startswith("Your tool call was invalid: There is no tool named")
    assert result.answer == "3"
    model.assert_complete()


async def test_tools_added_mid_run_are_offered_from_the_next_step() -> None:
    @tool
    def unlock() -> str:
        """Unlock the second tool."""
        toolset.extra.append(add)
        return "unlocked"

    class GrowingToolset(FunctionToolset):
        def __init__(self) -> None:
            super().__init__([unlock])
            self.extra: list[FunctionTool] = []

        async def list_tools(self) -> list[ToolSpec]:
            return [*await super().list_tools(), *(t.spec for t in self.extra)]

        async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
            extra = {t.spec.name: t for t in self.extra}
            if name in extra:
                return await FunctionToolset([extra[name]]).call_tool(name, arguments)
            return await super().call_tool(name, arguments)

    toolset = GrowingToolset()
    model = ScriptedModel([calls(("unlock", {})), calls(("add", {"a": 1, "b": 2})), answer("3")])
    with anyio.fail_after(5):
        result = await run("unlock then add", model=model, toolsets=[toolset])
    assert [[t.name for t in tools] for _, tools in model.requests] == [
        ["unlock"],
        ["unlock", "add"],
        ["unlock", "add"],
    ]
    assert result.answer == "3"
    model.assert_complete()


async def test_a_task_asking_for_a_boxed_answer_gets_the_boxed_value() -> None:
    task = r"What is 2+3? Put your final answer within \boxed{}."
    reply = r"2 plus 3 is 5, so the answer is \boxed{5}."
    model = ScriptedModel([calls(("add", {"a": 2, "b": 3})), answer(reply)])
    with anyio.fail_after(5):
        result = await run(task, model=model, toolsets=[FunctionToolset([add])])
    assert (result.answer, result.boxed_answer) == (reply, "5")
    model.assert_complete()


async def test_a_box_the_task_did_not_ask_for_is_left_in_the_answer() -> None:
    model = ScriptedModel([answer(r"It is \boxed{5}.")])
    with anyio.fail_after(5):
        result = await run("What is 2+3?", model=model)
    assert (result.answer, result.boxed_answer) == (r"It is \boxed{5}.", None)
    model.assert_complete()


async def test_a_tool_whose_schema_cannot_be_used_is_not_offered_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = ToolSpec(
        name="lookup",
        description="Find a record.",
        parameters={"type": "object", "properties": {"key": {"$ref": "#/$defs/Key"}}},
    )

    class WithBrokenTool(FunctionToolset):
        async def list_tools(self) -> list[ToolSpec]:
            return [*await super().list_tools(), broken]

    model = ScriptedModel([calls(("add", {"a": 2, "b": 3})), answer("5")])
    with anyio.fail_after(5), caplog.at_level("WARNING", logger="verity"):
        result = await run("2+3?", model=model, toolsets=[WithBrokenTool([add])])
    assert result.answer == "5"
    assert [[t.name for t in tools] for _, tools in model.requests] == [["add"], ["add"]]
    assert {r.getMessage() for r in caplog.records} == {
        "tool 'lookup' is unavailable: its $ref '#/$defs/Key' cannot be resolved"
    }
    model.assert_complete()


def test_run_sync_takes_a_run_id_like_run() -> None:
    model = ScriptedModel([answer("hi")])
    assert run_sync("hello", model=model, run_id="my-run").run_id == "my-run"
    model.assert_complete()
