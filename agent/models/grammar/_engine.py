"""llguidance as Verity's grammar engine: the model's vocabulary as its tokenizer, and one
compiled grammar checked token by token.

llguidance compiles JSON Schemas and Lark grammars in Rust and reports every problem as a value:
no schema can crash the process (llama.cpp's GBNF parser aborted or overflowed its stack on
some). It checks a single sampled token in about 2 µs and computes a full-vocabulary mask in
tens of µs, so Verity's sampler keeps its fast path (sample, check that one token, mask only on
rejection).
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np
from llguidance import LLMatcher, LLParserLimits, LLTokenizer

__all__ = ["LIMITS", "Constraint", "GrammarError", "grammar_tokenizer", "validate_lark"]

LIMITS = LLParserLimits(verbose_errors=False)
"""llguidance's default resource limits, with short error messages."""

_SPECIAL = b"\xff"
"""llguidance's marker of a special token, which grammar text never matches."""


class GrammarError(ValueError):
    """llguidance refused a grammar (the message says why)."""


def grammar_tokenizer(vocab: Any) -> LLTokenizer:
    """llguidance's view of a llama.cpp vocabulary (a second or two for 150k tokens: cache it,
    and free it before the model: it calls into the vocabulary).

    Unlike `llguidance.llamacpp.lltokenizer_from_vocab`, only control tokens are special: a
    token the model was taught as text, such as Qwen's `<tool_call>` or an R1 `<think>`, matches
    the same text in a grammar, as it does in llama.cpp's own grammars. Every end-of-generation
    token counts as the end of the grammar. No mask-speeding "slices": masks are computed only
    when a sampled token is rejected, and building them doubled the set-up time.
    """
    lib = llama_cpp.llama_cpp._lib  # the bound C functions: 3x faster than the wrappers here
    count = lib.llama_vocab_n_tokens(vocab)
    buffer = ctypes.create_string_buffer(16 * 1024 + 1)
    tokens: list[bytes] = []
    ends: list[int] = []
    for token in range(count):
        size = lib.llama_token_to_piece(vocab, token, buffer, 16 * 1024, 0, True)
        piece = buffer.raw[: max(size, 0)]
        if lib.llama_vocab_get_attr(vocab, token) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL:
            piece = _SPECIAL + piece
        tokens.append(piece)
        if lib.llama_vocab_is_eog(vocab, token):
            ends.append(token)
    tokenize = ctypes.cast(lib.llama_tokenize, ctypes.c_void_p).value
    return LLTokenizer.from_llamacpp(  # type: ignore[attr-defined, no-any-return]
        tokens=tokens,
        vocab_ptr=vocab,
        tokenize_fptr=tokenize,
        eos_token=ends or [lib.llama_vocab_eos(vocab)],
        slices=[],
    )


def validate_lark(tokenizer: LLTokenizer | None, lark: str) -> str | None:
    """Why llguidance refuses the Lark grammar `lark` (for `tokenizer`, if given); None if not."""
    grammar = LLMatcher.grammar_from_lark(lark)
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, tokenizer, limits=LIMITS)
    return (messages[0] if messages else "refused") if is_error else None


class Constraint:
    """One grammar (Lark syntax, `%json` allowed) applied to one generation, token by token."""

    def __init__(self, tokenizer: LLTokenizer, lark: str) -> None:
        """Compile `lark` for `tokenizer`.

        Raises:
            GrammarError: llguidance refused the grammar.
        """
        grammar = LLMatcher.grammar_from_lark(lark)
        self._matcher = LLMatcher(tokenizer, grammar, log_level=0, limits=LIMITS)
        if self._matcher.is_error():
            raise GrammarError(self._matcher.get_error())
        self._n_vocab = tokenizer.vocab_size
        self._ends = frozenset(tokenizer.eos_tokens)
        self._mask = np.zeros((self._n_vocab + 31) // 32, dtype=np.int32)

    @property
    def error(self) -> str:
        """Why the grammar cannot go on ("" while it can)."""
        return self._matcher.get_error() if self._matcher.is_error() else ""

    def allows(self, token: int) -> bool:
        """Whether `token` may come next (an end-of-generation token: whether the text may end)."""
        if self._matcher.validate_tokens([token]) == 1:
            return True
        # once nothing can follow, llguidance refuses every token, the end ones included
        return token in self._ends and self._matcher.is_accepting()

    def accept(self, token: int) -> bool:
        """Advance past `token`; False if the grammar refused it."""
        return bool(self._matcher.consume_token(token))

    def allowed_mask(self, size: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which of the first `size` token ids may come next."""
        self._matcher.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._mask.nbytes)
        bits = np.unpackbits(self._mask.view(np.uint8), bitorder="little").astype(bool)
        allowed = np.zeros(size, dtype=bool)
        common = min(size, self._n_vocab)
        allowed[:common] = bits[:common]
        return allowed
