"""A fenced list closed after one call is written again the model's own way (real model)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import jsonschema
import pytest

from tests.fixtures.tools import book_room
from verity import LlamaCppModel, Message, ModelSettings
from verity.models.formats import HermesFormat
from verity.models.formats.base import WHITESPACE, call_rules
from verity.tools.base import ToolSpec


class FencedListFirst(HermesFormat):
    """Hermes, except that the first spelling of a call is always a fenced list."""

    def grammar(self, tools: list[ToolSpec]) -> str:
        return "\n".join(
            [
                'start: "```json\\n[" WS call (WS "," WS call)* WS "]" WS "```"',
                f"WS: /{WHITESPACE}/",
                *call_rules(tools),
            ]
        )


def _model(path: Path) -> LlamaCppModel:
    settings = ModelSettings(temperature=0, relevance_gate=False)
    return LlamaCppModel(path, settings, call_format=FencedListFirst())


@pytest.mark.slow
async def test_a_list_of_one_call_is_written_again_without_the_list(embedded_path: Path) -> None:
    model = _model(embedded_path)
    request = [Message(role="user", content="Book a room for two guests, three nights, sea view.")]
    with anyio.fail_after(120):
        response = await model.respond(request, [book_room.spec], tool_choice="required")
    model.close()
    # the forced list is gone: what remains is one block the model spelled its own way
    assert not response.raw.lstrip().startswith("```json\n[")
    assert response.raw.count("```json") <= 1
    assert response.invalid_calls == []
    assert [c.name for c in response.tool_calls] == ["book_room"]
    jsonschema.validate(response.tool_calls[0].arguments, book_room.spec.parameters)


@pytest.mark.slow
async def test_a_list_of_several_calls_is_kept(embedded_path: Path) -> None:
    model = _model(embedded_path)
    request = [
        Message(
            role="user",
            content="Book two rooms: one for two guests, three nights, sea view; "
            "one for four guests, one night, garden view.",
        )
    ]
    with anyio.fail_after(120):
        response = await model.respond(request, [book_room.spec], tool_choice="required")
    model.close()
    assert response.raw.lstrip().startswith("```json\n[")
    assert len(json.loads(response.raw.strip().removeprefix("```json").removesuffix("```"))) == 2
    assert response.invalid_calls == []
    assert len(response.tool_calls) == 2
    for call in response.tool_calls:
        jsonschema.validate(call.arguments, book_room.spec.parameters)
