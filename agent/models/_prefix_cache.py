"""Warm starts: a prompt prefix's evaluated KV state saved to, and restored from, the disk store.

Every run begins with the same system prompt and tool schemas: thousands of tokens that take
tens of seconds to evaluate on a CPU. Once evaluated, their state (llama.cpp's KV cache for
sequence 0, without logits) is saved; a later run, in any process, whose prompt begins with the
same tokens on the same model restores it and evaluates only the rest.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import platformdirs

from verity.messages import Message
from verity.models._file_digest import model_sha256
from verity.models._generation import common_length
from verity.models._prefix_store import PrefixKey, PrefixStore
from verity.settings import ModelSettings

__all__ = [
    "MIN_PREFIX_TOKENS",
    "PrefixCache",
    "default_prefix_cache_dir",
    "prefix_cache_for",
    "shared_prefix_length",
]

_log = logging.getLogger("verity.models")

MIN_PREFIX_TOKENS = 64
"""Shorter prefixes are evaluated faster than a file is read: they are not cached."""
DIR_VARIABLE = "VERITY_PREFIX_CACHE_DIR"
_MAX_BLOB_BYTES = 256 << 20
"""Bound of the blobs (a vocabulary is ~1.6 MB for 150k tokens)."""
_TASK_MARK = "\u2063verity-task\u2063"
"""Stands in for the first user message, to find where the part all runs share ends."""


def default_prefix_cache_dir() -> Path:
    """`$VERITY_PREFIX_CACHE_DIR`, else `prefix-cache` in the user cache directory."""
    configured = os.environ.get(DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("verity")) / "prefix-cache"


@dataclass
class PrefixCache:
    """The disk store, seen from one model file and one context layout."""

    store: PrefixStore
    model_path: Path
    context: dict[str, Any]
    """What the state's bytes depend on besides the model and the tokens."""
    _model_sha256: str | None = field(default=None, repr=False)
    _broken: bool = field(default=False, repr=False)

    def restore(self, llm: Any, tokens: list[int]) -> bool:
        """Load the state saved after `tokens` into `llm`'s context, replacing its KV cache.

        Returns whether it did; on False the context holds either what it held (nothing was
        stored) or nothing (`llm.n_tokens` is 0: the stored state did not fit this context).
        """
        key = self._key(tokens)
        payload = self.store.load(key) if key is not None else None
        if key is None or payload is None:
            return False
        llm._ctx.kv_cache_clear()
        llm.n_tokens = 0
        buffer = (ctypes.c_uint8 * len(payload)).from_buffer(payload)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(payload), 0) == 0:
            _log.warning(
                "prefix cache: llama.cpp refused the state in %s", self.store.path_for(key)
            )
            llm._ctx.kv_cache_clear()
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        return True

    def save(self, llm: Any, tokens: list[int]) -> None:
        """Save `llm`'s state, which must hold exactly `tokens`, as the state after them."""
        key = self._key(tokens)
        if key is None:
            return
        size = llama_cpp.llama_state_seq_get_size(llm._ctx.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llm._ctx.ctx, buffer, size, 0)
        if 0 < written <= size:
            self.store.save(key, memoryview(buffer).cast("B")[:written])

    def load_blob(self, name: str) -> bytearray | None:
        """What `save_blob(name, ...)` stored for this model and context, if it is stored."""
        key = self._blob_key(name)
        return self._blobs().load(key) if key is not None else None

    def save_blob(self, name: str, data: bytes) -> None:
        """Keep `data`, derived from this model alone, under `name` (the model's vocabulary as
        the grammar engine reads it: a second to read again in every process)."""
        key = self._blob_key(name)
        if key is not None:
            self._blobs().save(key, memoryview(data))

    def _blobs(self) -> PrefixStore:
        """Blobs are kept beside the prefixes, in `blobs/`, bounded on their own."""
        bound = min(self.store.max_bytes, _MAX_BLOB_BYTES)
        return PrefixStore(self.store.directory / "blobs", max_bytes=bound)

    def _blob_key(self, name: str) -> PrefixKey | None:
        key = self._key([])
        context = {**self.context, "blob": name}
        return None if key is None else PrefixKey(key.model_sha256, (), context)

    def _key(self, tokens: list[int]) -> PrefixKey | None:
        if self._broken:
            return None
        if self._model_sha256 is None:
            try:
                memo = self.store.directory / "digests"
                self._model_sha256 = model_sha256(self.model_path, memo_dir=memo)
            except OSError as exc:
                _log.warning("prefix cache: off, cannot hash %s: %s", self.model_path, exc)
                self._broken = True
                return None
        return PrefixKey(self._model_sha256, tuple(tokens), self.context)


def prefix_cache_for(model_path: Path, settings: ModelSettings) -> PrefixCache | None:
    """The prefix cache `settings` ask for, None when it is off."""
    if not settings.prefix_cache:
        return None
    directory = settings.prefix_cache_dir or default_prefix_cache_dir()
    context = {
        "llama_cpp": llama_cpp.__version__,
        "type_k": settings.type_k or "f16",
        "type_v": settings.type_v or "f16",
        "flash_attn": settings.flash_attn,
    }
    store = PrefixStore(directory, max_bytes=settings.prefix_cache_max_bytes)
    return PrefixCache(store, model_path, context)


def shared_prefix_length(
    llm: Any,
    history: list[Message],
    tokens: list[int],
    *,
    add_bos: bool,
    render: Callable[[list[Message]], str],
) -> int:
    """How many leading `tokens` (the prompt of `history`) any conversation with the same
    system prompt and tools begins with: the prompt up to the first user message's text.

    `render` is the prompt of a conversation, tools included. Returns 0 when that part is
    shorter than `MIN_PREFIX_TOKENS`, or is the whole prompt.
    """
    first_user = next((i for i, m in enumerate(history) if m.role == "user"), None)
    if first_user is None:
        return 0
    text = render([*history[:first_user], Message(role="user", content=_TASK_MARK)])
    end = text.find(_TASK_MARK)
    if end <= 0:
        return 0
    head = llm.tokenize(text[:end].encode("utf-8"), add_bos=add_bos, special=True)
    # the head's last token may merge with the task's first characters in the real prompt
    length = common_length(head, tokens)
    return length if MIN_PREFIX_TOKENS <= length < len(tokens) else 0
