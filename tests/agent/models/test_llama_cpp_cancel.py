"""Stopping the embedded model mid-generation: cancelled runs, close() from anywhere, reuse."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from verity import (
    LlamaCppModel,
    Message,
    ModelCallStarted,
    ModelError,
    ModelSettings,
    RunEnded,
    RunHooks,
    run,
)
from verity.hooks import RunStatus

LONG_TASK = (
    "Write a Python module implementing a red-black tree with insert, delete and search, "
    "with a docstring for every method."
)
QUESTION = [Message(role="user", content="What is the capital of France? One word.")]


class Watcher(RunHooks):
    def __init__(self) -> None:
        self.generating = anyio.Event()
        self.ended: list[RunStatus] = []

    async def on_model_start(self, event: ModelCallStarted) -> None:
        self.generating.set()

    async def on_run_end(self, event: RunEnded) -> None:
        self.ended.append(event.status)


@pytest.fixture
def model(embedded_path: Path) -> LlamaCppModel:
    # 2000 tokens of code take minutes here: only a cancellation ends this run early
    return LlamaCppModel(embedded_path, ModelSettings(temperature=0, n_ctx=4096, max_tokens=2000))


@pytest.mark.slow
async def test_cancelling_run_stops_generation_and_the_model_answers_afterwards(
    model: LlamaCppModel,
) -> None:
    watcher = Watcher()
    outcome: list[str] = []

    async def long_run() -> None:
        await run(LONG_TASK, model=model, hooks=watcher)
        outcome.append("finished")

    with anyio.fail_after(120):
        await model.respond(QUESTION, [])  # loaded: the cancellation lands in generation
        async with anyio.create_task_group() as group:
            group.start_soon(long_run)
            await watcher.generating.wait()
            await anyio.sleep(1.5)  # into the prompt evaluation or the decode
            group.cancel_scope.cancel()
        assert outcome == []
        assert watcher.ended == ["cancelled"]
        answer = await model.respond(QUESTION, [])
    assert "Paris" in answer.content
    model.close()
    model.close()


@pytest.mark.slow
async def test_close_from_another_thread_stops_a_generation_with_a_model_error(
    model: LlamaCppModel,
) -> None:
    with anyio.fail_after(120):
        await model.respond(QUESTION, [])
        async with anyio.create_task_group() as group:
            closer = threading.Timer(1.5, model.close)  # a thread that is not the worker
            group.start_soon(anyio.to_thread.run_sync, closer.start)
            with pytest.raises(ModelError) as caught:
                await model.respond([Message(role="user", content=LONG_TASK)], [])
        closer.join()
        assert str(caught.value) == "The model was closed while it was generating."
        answer = await model.respond(QUESTION, [])  # closed models load again on use
    assert "Paris" in answer.content
    await model.aclose()
    model.close()


@pytest.mark.slow
def test_close_during_the_first_load_waits_for_the_load_and_frees_once(
    model: LlamaCppModel,
) -> None:
    errors: list[str] = []

    async def respond() -> None:
        try:
            await model.respond(QUESTION, [])
        except ModelError as exc:
            errors.append(str(exc))

    async def respond_while_closing() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(respond)
            await anyio.sleep(0.2)  # the worker is inside llama.cpp's model loader
            await model.aclose()

    anyio.run(respond_while_closing)
    assert errors == ["The model was closed while it was generating."]
    model.close()
