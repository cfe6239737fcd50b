"""Warm starts on the real embedded model: the system prompt and tools are evaluated once, and
a later model instance (as a later process would) restores them from disk; never for another
model or another prefix, and never from a broken entry."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import anyio
import llama_cpp
import pytest

from tests.fixtures.tools import book_room
from verity import LlamaCppModel, Message, ModelResponse, ModelSettings
from verity.models import llama_cpp as llama_cpp_model
from verity.models._prefix_cache import prefix_cache_for
from verity.models._prefix_store import PrefixStore
from verity.models.grammar import VocabularyPieces, vocabulary_pieces
from verity.models.llama_cpp import _VOCABULARY_BLOB, _vocabulary
from verity.tools.base import ToolSpec
from verity.tools.builtin.calculator import calculator

pytestmark = pytest.mark.slow

TASK = "What is 1234 * 5678 + 17?"
SYSTEM = Message(role="system", content="You are a careful assistant that uses tools.")
TOOLS = [calculator.spec, book_room.spec]


def conversation(task: str) -> list[Message]:
    return [SYSTEM, Message(role="user", content=task)]


async def fresh_respond(
    path: Path, cache: Path, messages: list[Message], tools: list[ToolSpec] = TOOLS
) -> ModelResponse:
    """One model call on a newly loaded model: nothing in its KV cache but what the disk has."""
    settings = ModelSettings(temperature=0, n_ctx=1024, max_tokens=8, prefix_cache_dir=cache)
    model = LlamaCppModel(path, settings)
    try:
        with anyio.fail_after(300):
            return await model.respond(messages, tools)
    finally:
        model.close()


def entries(cache: Path) -> list[Path]:
    return PrefixStore(cache, max_bytes=1 << 40).entries()


@dataclass
class Cold:
    """A first run with an empty prefix cache, and the entry it left."""

    response: ModelResponse
    entry: Path


@pytest.fixture(scope="module")
def cold(embedded_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Cold:
    cache = tmp_path_factory.mktemp("cold-cache")
    response = anyio.run(fresh_respond, embedded_path, cache, conversation(TASK))
    assert response.usage.prompt_tokens_evaluated == response.usage.prompt_tokens
    (entry,) = entries(cache)
    return Cold(response, entry)


def cache_with(entry: Path, tmp_path: Path) -> Path:
    """A cache directory of the test's own holding a copy of `entry`."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy2(entry, cache / entry.name)
    return cache


async def test_a_later_run_with_the_same_tools_evaluates_only_its_task_and_answers_the_same(
    embedded_path: Path, cold: Cold, tmp_path: Path
) -> None:
    cache = cache_with(cold.entry, tmp_path)
    warm = await fresh_respond(embedded_path, cache, conversation(TASK))
    other = await fresh_respond(embedded_path, cache, conversation("Book a garden room."))
    # only the task and the turn's opening are new: the system prompt and both tools are not
    assert cold.response.usage.prompt_tokens > 300
    assert warm.usage.prompt_tokens_evaluated < 30
    assert other.usage.prompt_tokens_evaluated < 30
    shared = warm.usage.prompt_tokens - warm.usage.prompt_tokens_evaluated
    assert other.usage.prompt_tokens - other.usage.prompt_tokens_evaluated == shared
    # a restored prefix is the state the cold run computed: the same prompt, the same answer
    assert warm.raw == cold.response.raw
    assert entries(cache) == [cache / cold.entry.name]


async def test_another_model_never_gets_the_entry(
    thinking_model_path: Path, cold: Cold, tmp_path: Path
) -> None:
    cache = cache_with(cold.entry, tmp_path)
    # the same weights and the same prompt, in a file with another chat template: another model
    response = await fresh_respond(thinking_model_path, cache, conversation(TASK))
    assert response.usage.prompt_tokens_evaluated == response.usage.prompt_tokens
    assert len(entries(cache)) == 2


async def test_another_prefix_never_gets_the_entry(
    embedded_path: Path, cold: Cold, tmp_path: Path
) -> None:
    cache = cache_with(cold.entry, tmp_path)
    response = await fresh_respond(embedded_path, cache, conversation(TASK), TOOLS[:1])
    assert response.usage.prompt_tokens_evaluated == response.usage.prompt_tokens
    assert len(entries(cache)) == 2


async def test_a_broken_entry_is_ignored_and_replaced_by_a_whole_one(
    embedded_path: Path, cold: Cold, tmp_path: Path
) -> None:
    cache = cache_with(cold.entry, tmp_path)
    entry = cache / cold.entry.name
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    again = await fresh_respond(embedded_path, cache, conversation(TASK))
    assert again.usage.prompt_tokens_evaluated == again.usage.prompt_tokens
    assert again.raw == cold.response.raw
    assert entries(cache) == [entry]
    assert entry.read_bytes() == cold.entry.read_bytes()


def test_the_vocabulary_is_read_once_per_model_and_a_stored_one_that_differs_is_read_again(
    embedded_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reading 150k tokens' text for the grammar engine takes about a second in every process
    llm = llama_cpp.Llama(str(embedded_path), vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    cache = prefix_cache_for(embedded_path, ModelSettings(prefix_cache_dir=tmp_path))
    assert cache is not None
    read = _vocabulary(vocab, cache)
    assert read == vocabulary_pieces(vocab)
    assert len(read.pieces) > 150_000 and read.ends

    def not_again(vocab: object) -> VocabularyPieces:
        raise AssertionError("read again")

    monkeypatch.setattr(llama_cpp_model, "vocabulary_pieces", not_again)
    assert _vocabulary(vocab, cache) == read  # a later process reads it from the cache
    # an entry holding other pieces (another tokenizer's last token) is not believed
    cache.save_blob(_VOCABULARY_BLOB, VocabularyPieces([*read.pieces[:-1], b"?"], read.ends).pack())
    with pytest.raises(AssertionError, match="read again"):
        _vocabulary(vocab, cache)
    monkeypatch.undo()
    assert _vocabulary(vocab, cache) == read
    # nor is an entry that is not a packed vocabulary at all
    cache.save_blob(_VOCABULARY_BLOB, b"\x01\x00")
    assert _vocabulary(vocab, cache) == read
    # and another model's cache never has it
    other = prefix_cache_for(tmp_path / "other.gguf", ModelSettings(prefix_cache_dir=tmp_path))
    (tmp_path / "other.gguf").write_bytes(b"not the same weights")
    assert other is not None and other.load_blob(_VOCABULARY_BLOB) is None


def test_a_packed_vocabulary_reads_back_whole_and_refuses_bytes_it_did_not_write() -> None:
    pieces = VocabularyPieces([b"a", b"", b"\xffspecial", "é".encode()], [2])
    assert VocabularyPieces.unpack(pieces.pack()) == pieces
    for broken in (b"", b"\x00", pieces.pack()[:-1], pieces.pack() + b"x"):
        with pytest.raises(ValueError, match="not a packed vocabulary"):
            VocabularyPieces.unpack(broken)
