"""The repetition guard: a generation that loops is stopped early and says why; one that only
looks repetitive (counting, a short separator) is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from verity import (
    LlamaCppModel,
    Message,
    ModelSettings,
    RunLimitExceeded,
    RunSettings,
    TraceRecorder,
    TraceStore,
    run,
)
from verity.models._generation import _looping
from verity.models._repetition import MIN_SPAN, repeated_unit
from verity.tools.base import ToolSpec

LOOPING_TASK = "Print the word 'hello' 50 times."
"""The 0.5B model does not count: it writes `hello` until something stops it."""


def test_a_line_repeated_back_to_back_is_a_loop_once_it_spans_enough_tokens() -> None:
    line = [11, 12, 13, 14, 15, 16, 17, 198]
    assert repeated_unit([1, 2, 3] + line * 15) is None  # 120 tokens: not yet
    assert repeated_unit([1, 2, 3] + line * 16) == len(line)
    assert repeated_unit([7] * (MIN_SPAN - 1)) is None
    assert repeated_unit([7] * MIN_SPAN) == 1


def test_counting_and_a_long_unit_seen_three_times_are_not_loops() -> None:
    counting = [token for n in range(200) for token in (n % 10, 500 + n // 10, 198)]
    assert repeated_unit(counting) is None
    block = list(range(100, 200))  # a 100-token paragraph, three times: still no loop
    assert repeated_unit(block * 3) is None
    assert repeated_unit(block * 4) == 100


def test_inside_a_call_list_the_same_calls_written_twice_are_a_loop() -> None:
    first, second = list(range(300, 320)), list(range(400, 425))  # two calls' tokens
    opening = [91, 198]  # `[` and a newline
    assert not _looping(opening + first + second, call_from=0)
    assert _looping(opening + first + second + first + second, call_from=0)
    assert not _looping(opening + first + second + first + second, call_from=None)  # as text
    assert not _looping(opening + first + first[:10], call_from=0)  # a call cut short


@pytest.mark.slow
async def test_a_looping_generation_stops_early_with_repetition_as_its_reason(
    embedded_path: Path,
) -> None:
    settings = ModelSettings(temperature=0, n_ctx=1024, max_tokens=400)
    model = LlamaCppModel(embedded_path, settings)
    try:
        with anyio.fail_after(300):
            looped = await model.respond([Message(role="user", content=LOOPING_TASK)], [])
    finally:
        model.close()
    assert looped.finish_reason == "repetition"
    assert looped.usage.completion_tokens < 200 < settings.max_tokens
    assert looped.content.split() == ["hello"] * len(looped.content.split())


@pytest.mark.slow
async def test_a_run_records_the_repetition_in_its_trace_and_says_so(
    embedded_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ModelSettings(temperature=0, n_ctx=1024, max_tokens=400, prefix_cache=False)
    model = LlamaCppModel(embedded_path, settings)
    store = TraceStore(tmp_path / "traces.db")
    try:
        with anyio.fail_after(300), pytest.raises(RunLimitExceeded):
            await run(
                LOOPING_TASK,
                model=model,
                toolsets=[],
                settings=RunSettings(max_steps=1),
                hooks=TraceRecorder(store),
            )
    finally:
        store.close()
        model.close()
    with sqlite3.connect(tmp_path / "traces.db") as db:
        ((reason, tokens),) = db.execute("select finish_reason, output_tokens from model_calls")
    assert reason == "repetition"
    assert tokens < 200
    assert "repeated the same text over and over: its generation was stopped" in caplog.text


@pytest.mark.slow
async def test_a_real_model_writing_the_same_call_again_and_again_makes_it_once(
    embedded_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    weather = ToolSpec(
        name="get_weather",
        description="The weather in a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    settings = ModelSettings(temperature=0, n_ctx=2048, max_tokens=600)
    model = LlamaCppModel(embedded_path, settings)
    task = "Check the weather in Paris ten times, once per call."
    try:
        with anyio.fail_after(300):
            response = await model.respond([Message(role="user", content=task)], [weather])
    finally:
        model.close()
    # the 0.5B model writes the same call over and over; the list stops at its first repeat
    assert [(call.name, call.arguments) for call in response.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert response.usage.completion_tokens < 100 < settings.max_tokens
    assert "repeated the same text over and over" in caplog.text
