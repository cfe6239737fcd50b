"""Hooks: each method receives one frozen event, and `CompositeHooks` passes it on to all."""

from __future__ import annotations

import dataclasses

import pytest

from verity import (
    CompositeHooks,
    FunctionToolset,
    ModelCallEnded,
    ModelCallStarted,
    RunEnded,
    RunHooks,
    RunStarted,
    ToolCallEnded,
    ToolCallStarted,
    VerdictReached,
    run,
    tool,
)
from verity.testing import ScriptedModel, answer, calls
from verity.verify import Programmatic

Event = (
    RunStarted
    | ModelCallStarted
    | ModelCallEnded
    | ToolCallStarted
    | ToolCallEnded
    | VerdictReached
    | RunEnded
)


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


class EventLog(RunHooks):
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def on_run_start(self, event: RunStarted) -> None:
        self.events.append(event)

    async def on_model_start(self, event: ModelCallStarted) -> None:
        self.events.append(event)

    async def on_model_end(self, event: ModelCallEnded) -> None:
        self.events.append(event)

    async def on_tool_start(self, event: ToolCallStarted) -> None:
        self.events.append(event)

    async def on_tool_end(self, event: ToolCallEnded) -> None:
        self.events.append(event)

    async def on_verdict(self, event: VerdictReached) -> None:
        self.events.append(event)

    async def on_run_end(self, event: RunEnded) -> None:
        self.events.append(event)


async def test_a_run_tells_every_hook_each_event_once_in_order() -> None:
    first, second = EventLog(), EventLog()
    model = ScriptedModel([calls(("double", {"x": 21})), answer("42")])
    verifier = Programmatic(lambda candidate: "42" in candidate.answer, confirms=True)
    result = await run(
        "Double 21.",
        model=model,
        toolsets=[FunctionToolset([double])],
        verifier=verifier,
        hooks=CompositeHooks([first, second]),
        run_id="r1",
    )
    assert result.answer == "42"
    assert first.events == second.events
    assert [(type(e).__name__, getattr(e, "step", 0)) for e in first.events] == [
        ("RunStarted", 0),
        ("ModelCallStarted", 1),
        ("ModelCallEnded", 1),
        ("ToolCallStarted", 1),
        ("ToolCallEnded", 1),
        ("ModelCallStarted", 2),
        ("ModelCallEnded", 2),
        ("VerdictReached", 2),
        ("RunEnded", 0),
    ]
    ended = first.events[4]
    assert isinstance(ended, ToolCallEnded)
    assert (ended.call.name, ended.result.content) == ("double", "42")
    assert first.events[-1] == RunEnded(
        run_id="r1", status="completed", answer="42", verified=True, verify_rounds=1
    )


def test_events_are_frozen_and_take_their_fields_by_name() -> None:
    event = RunEnded(run_id="r1", status="failed", error="ModelError: gone")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = "completed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunEnded("r1", "failed")  # type: ignore[call-arg]
    assert (event.answer, event.verified, event.verify_rounds) == (None, None, 0)
