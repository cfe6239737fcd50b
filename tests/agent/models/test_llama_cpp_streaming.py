"""`LlamaCppModel(on_delta=...)` on the real embedded model: what streams is exactly the final
reasoning and answer, and never the text of a tool call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from verity import LlamaCppModel, Message, ModelSettings
from verity.models.base import DeltaKind
from verity.tools.builtin.calculator import calculator

pytestmark = pytest.mark.slow


class Recorder:
    def __init__(self) -> None:
        self.deltas: list[tuple[DeltaKind, str]] = []

    def __call__(self, kind: DeltaKind, text: str) -> None:
        self.deltas.append((kind, text))

    def joined(self, kind: DeltaKind) -> str:
        return "".join(text for k, text in self.deltas if k == kind)


def ask(text: str) -> list[Message]:
    return [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content=text),
    ]


@pytest.fixture(scope="module")
def streaming(embedded_path: Path) -> Iterator[tuple[LlamaCppModel, Recorder]]:
    recorder = Recorder()
    model = LlamaCppModel(
        embedded_path, ModelSettings(temperature=0, n_ctx=2048), on_delta=recorder
    )
    yield model, recorder
    model.close()


async def test_a_text_answer_streams_piece_by_piece_as_the_final_content(
    streaming: tuple[LlamaCppModel, Recorder],
) -> None:
    model, recorder = streaming
    recorder.deltas.clear()
    response = await model.respond(ask("Write two sentences about the sea."), [calculator.spec])
    assert not response.tool_calls and response.content
    assert recorder.joined("content") == response.content
    assert len(recorder.deltas) > 1  # as generated, not in one piece at the end
    assert recorder.joined("reasoning") == ""


async def test_a_tool_call_never_streams(streaming: tuple[LlamaCppModel, Recorder]) -> None:
    model, recorder = streaming
    recorder.deltas.clear()
    response = await model.respond(ask("What is 1234 * 5678 + 17?"), [calculator.spec])
    assert [call.name for call in response.tool_calls] == ["calculator"]
    assert recorder.joined("content") == response.content
    assert all("calculator" not in text and "{" not in text for _, text in recorder.deltas)


async def test_reasoning_streams_apart_from_the_answer(thinking_model_path: Path) -> None:
    recorder = Recorder()
    settings = ModelSettings(temperature=0, n_ctx=2048, max_thinking_tokens=8)
    model = LlamaCppModel(thinking_model_path, settings, on_delta=recorder)
    try:
        response = await model.respond(ask("Write one sentence about the sea."), [])
    finally:
        model.close()
    assert response.reasoning and response.content
    assert recorder.joined("reasoning") == response.reasoning
    assert recorder.joined("content") == response.content
    kinds = [kind for kind, _ in recorder.deltas]
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")  # reasoning first
