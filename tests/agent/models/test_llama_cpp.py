"""The llama.cpp backend on the real embedded model: calls constrained, settings passed through."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Literal

import anyio
import jsonschema
import pytest

from tests.fixtures.tools import book_room
from verity import KVCacheWarning, LlamaCppModel, Message, ModelError, ModelSettings, UserError
from verity.models.formats import HermesFormat
from verity.tools.base import tool
from verity.tools.builtin.calculator import calculator


@tool
def body_mass_index(weight: float, height: float) -> float:
    """Calculate body mass index given weight and height.

    Args:
        weight: Weight of the individual in kilograms.
        height: Height of the individual in meters.
    """
    return weight / height**2


MOUNTAIN_VIEW = [
    Message(role="system", content="You are a helpful assistant."),
    Message(
        role="user",
        content="Book a room for two guests for three nights with a view of the mountains.",
    ),
]


@pytest.mark.slow
async def test_constrained_call_is_schema_valid_where_free_generation_is_not(
    embedded_path: Path,
) -> None:
    # the relevance gate would (rightly) refuse this booking: the grammar is under test here
    settings = ModelSettings(temperature=0, relevance_gate=False)
    free = LlamaCppModel(embedded_path, settings.model_copy(update={"constrain_tool_calls": False}))
    grammar = LlamaCppModel(embedded_path, settings)
    with anyio.fail_after(120):
        unconstrained = await free.respond(MOUNTAIN_VIEW, [book_room.spec])
        constrained = await grammar.respond(MOUNTAIN_VIEW, [book_room.spec])
    free.close()
    grammar.close()
    # The model's natural answer names a view the schema does not allow ...
    assert unconstrained.tool_calls == []
    assert unconstrained.invalid_calls == [
        "Invalid arguments for 'book_room' at view: 'mountains' is not one of ['sea', 'garden']."
    ]
    # ... and under the grammar the same model, same prompt, produces a valid call.
    assert constrained.invalid_calls == []
    assert [c.name for c in constrained.tool_calls] == ["book_room"]
    jsonschema.validate(constrained.tool_calls[0].arguments, book_room.spec.parameters)
    assert constrained.finish_reason == "tool_calls"


class CallAfterFirstWord(HermesFormat):
    """Treats whatever follows the answer's first word as the opening of a call, so that a
    call starts mid-text, in the middle of a token (" sea" holds the space before the word)."""

    def find_call(self, content: str) -> int | None:
        stripped = content.lstrip()
        if " " not in stripped[1:]:
            return None
        return len(content) - len(stripped) + stripped.index(" ", 1) + 1


@pytest.mark.slow
async def test_a_call_that_opens_after_some_text_is_constrained_from_its_first_token(
    embedded_path: Path,
) -> None:
    model = LlamaCppModel(
        embedded_path, ModelSettings(temperature=0), call_format=CallAfterFirstWord()
    )
    story = [Message(role="user", content="Describe the sea in two sentences.")]
    with anyio.fail_after(120):
        response = await model.respond(story, [calculator.spec])
    model.close()
    first_word = response.raw.split()[0]
    assert response.content == first_word
    assert response.invalid_calls == []
    assert [c.name for c in response.tool_calls] >= ["calculator"]
    jsonschema.validate(response.tool_calls[0].arguments, calculator.spec.parameters)
    # the text before the opening survives whole, the part of its token before the call included
    assert response.raw.startswith(f"{first_word} ")


@pytest.mark.slow
async def test_second_turn_evaluates_only_its_new_tokens(greedy_model: LlamaCppModel) -> None:
    messages = [
        Message(role="system", content="You are a careful assistant that uses tools."),
        Message(role="user", content="What is 1234 * 5678 + 17?"),
    ]
    with anyio.fail_after(120):
        first = await greedy_model.respond(messages, [calculator.spec])
        assert [c.name for c in first.tool_calls] == ["calculator"]
        call = first.tool_calls[0]
        messages += [
            Message(role="assistant", raw=first.raw, tool_calls=first.tool_calls),
            Message(role="tool", tool_call_id=call.id, name=call.name, content="7006669"),
        ]
        second = await greedy_model.respond(messages, [calculator.spec])
    new_tokens = second.usage.prompt_tokens - first.usage.prompt_tokens
    assert second.usage.prompt_tokens_evaluated <= new_tokens + 1
    assert second.usage.prompt_tokens_evaluated < second.usage.prompt_tokens / 3


@pytest.mark.slow
async def test_tool_choice_none_answers_in_text_even_when_tools_are_offered(
    greedy_model: LlamaCppModel,
) -> None:
    with anyio.fail_after(120):
        response = await greedy_model.respond(MOUNTAIN_VIEW, [book_room.spec], tool_choice="none")
    assert response.tool_calls == []
    assert response.content.strip()
    assert response.content.lstrip()[0] not in "{`<"


@pytest.mark.slow
async def test_required_tool_choice_forces_a_valid_call(greedy_model: LlamaCppModel) -> None:
    messages = [Message(role="user", content="What is the capital of France?")]
    with anyio.fail_after(120):
        response = await greedy_model.respond(messages, [calculator.spec], tool_choice="calculator")
    assert [c.name for c in response.tool_calls] == ["calculator"]
    assert isinstance(response.tool_calls[0].arguments["expression"], str)


@pytest.mark.slow
def test_gpu_and_cache_settings_reach_llama_cpp(embedded_path: Path) -> None:
    settings = ModelSettings(
        n_ctx=512,
        n_batch=64,
        n_threads=1,
        n_gpu_layers=0,
        flash_attn=True,
        type_k="q8_0",
        type_v="q8_0",
        offload_kqv=False,
    )
    with pytest.warns(KVCacheWarning):
        model = LlamaCppModel(embedded_path, settings)
    llm = model.llama
    assert (llm.n_ctx(), llm.n_batch, llm.context_params.n_threads) == (512, 64, 1)
    assert llm.model_params.n_gpu_layers == 0
    assert llm.context_params.flash_attn_type == 1  # LLAMA_FLASH_ATTN_TYPE_ENABLED
    assert (llm.context_params.type_k, llm.context_params.type_v) == (8, 8)  # GGML_TYPE_Q8_0
    assert llm.context_params.offload_kqv is False
    model.close()


def test_a_quantised_kv_cache_warns_that_tool_calling_degrades(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00")  # never loaded: the warning comes first
    with pytest.warns(KVCacheWarning) as caught:
        LlamaCppModel(path, ModelSettings(type_k="q8_0", type_v="q4_0"))
    assert [str(w.message) for w in caught] == [
        "A quantised KV cache (type_k=q8_0, type_v=q4_0) degrades tool calling: expect wrong "
        "tools and arguments more often. Use f16 (the default) unless memory forces it."
    ]
    assert caught[0].filename == __file__  # it points at the line that created the model


@pytest.mark.parametrize("cache_type", ["f32", "f16", "bf16", None])
def test_a_full_precision_kv_cache_gives_no_warning(
    tmp_path: Path, cache_type: Literal["f32", "f16", "bf16"] | None
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00")
    LlamaCppModel(path, ModelSettings(type_k=cache_type, type_v=cache_type))  # warnings are errors


def test_a_missing_model_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        LlamaCppModel(tmp_path / "nope.gguf")
    assert caught.value.message == (
        f"Model file {str(tmp_path / 'nope.gguf')!r} does not exist. Pass the path of a GGUF file "
        "with --model (or VERITY_MODEL), or leave both unset to use the embedded default model."
    )


def test_a_file_that_is_not_gguf_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_text("<html>a download error page</html>")
    with pytest.raises(UserError, match="is not a GGUF file"):
        LlamaCppModel(path)


async def test_a_corrupt_gguf_is_a_model_error_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 4096)
    model = LlamaCppModel(path)
    with pytest.raises(ModelError, match="could not load"):
        await model.respond([Message(role="user", content="hi")], [])


@pytest.mark.slow
async def test_the_relevance_gate_stops_a_call_no_tool_can_serve(
    embedded_path: Path, greedy_model: LlamaCppModel
) -> None:
    # BFCL irrelevance_0: a triangle's area, with only a body-mass-index tool on offer
    triangle = [
        Message(
            role="user",
            content="Calculate the area of a triangle given the base is 10 "
            "meters and height is 5 meters.",
        ),
    ]
    gated_model = LlamaCppModel(embedded_path, ModelSettings(temperature=0, relevance_gate=True))
    with anyio.fail_after(120):
        without_gate = await greedy_model.respond(triangle, [body_mass_index.spec])
        gated = await gated_model.respond(triangle, [body_mass_index.spec])
        relevant = await gated_model.respond(
            [Message(role="user", content="What is 1234 * 5678 + 17?")], [calculator.spec]
        )
    gated_model.close()
    assert [c.name for c in without_gate.tool_calls] == ["body_mass_index"]  # the habit
    assert gated.tool_calls == [] and gated.invalid_calls == []
    assert gated.content.strip() and gated.content.lstrip()[0] not in "{`<"
    assert [c.name for c in relevant.tool_calls] == ["calculator"]


def gguf_header(path: Path, *, architecture: str, context_length: int) -> Path:
    """A GGUF file holding only a header: enough for the checks made before loading."""

    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    path.write_bytes(
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 2)
        + string("general.architecture")
        + struct.pack("<I", 8)
        + string(architecture)
        + string(f"{architecture}.context_length")
        + struct.pack("<II", 4, context_length)
    )
    return path


def test_the_default_context_shrinks_to_what_the_model_was_trained_with(tmp_path: Path) -> None:
    path = gguf_header(tmp_path / "small.gguf", architecture="llama", context_length=2048)
    assert LlamaCppModel(path).settings.n_ctx == 2048
    assert LlamaCppModel(path, ModelSettings(n_ctx=1024)).settings.n_ctx == 1024


def test_an_explicit_context_past_the_training_context_is_a_user_error(tmp_path: Path) -> None:
    path = gguf_header(tmp_path / "small.gguf", architecture="llama", context_length=2048)
    with pytest.raises(UserError) as caught:
        LlamaCppModel(path, ModelSettings(n_ctx=4096))
    assert str(caught.value) == (
        "n_ctx 4096 is larger than the 2048 tokens small.gguf was trained with; use at most "
        "2048 (--n-ctx)."
    )
    assert caught.value.field == "n_ctx"
