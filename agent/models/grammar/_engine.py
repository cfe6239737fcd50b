"""llguidance as Verity's grammar engine: the model's vocabulary as its tokenizer, and one
compiled grammar checked token by token.

llguidance compiles JSON Schemas and Lark grammars in Rust and reports every problem as a value:
no schema can crash the process (llama.cpp's GBNF parser aborted or overflowed its stack on
some). It checks a single sampled token in about 2 µs and computes a full-vocabulary mask in
tens of µs, so Verity's sampler keeps its fast path (sample, check that one token, mask only on
rejection).
"""

from __future__ import annotations

import array
import ctypes
import itertools
import struct
import sys
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llguidance import LLMatcher, LLParserLimits, LLTokenizer

__all__ = [
    "LIMITS",
    "Constraint",
    "GrammarError",
    "VocabularyPieces",
    "grammar_tokenizer",
    "validate_lark",
    "vocabulary_pieces",
]

LIMITS = LLParserLimits(verbose_errors=False)
"""llguidance's default resource limits, with short error messages."""

_SPECIAL = b"\xff"
"""llguidance's marker of a special token, which grammar text never matches."""
_MAX_PIECE = 16 * 1024


class GrammarError(ValueError):
    """llguidance refused a grammar (the message says why)."""


@dataclass(frozen=True)
class VocabularyPieces:
    """Each token's text as llguidance reads it (a control token marked special), and the
    end-of-generation tokens: the slow part of building the grammar tokenizer, kept on disk by
    the prefix cache (`pack`, `unpack`)."""

    pieces: list[bytes]
    ends: list[int]

    def pack(self) -> bytes:
        """Token count, end count, each piece's length, the ends, then the pieces' bytes."""
        head = struct.pack("<II", len(self.pieces), len(self.ends))
        lengths = array.array("I", map(len, self.pieces))
        ends = array.array("I", self.ends)
        return head + _little_endian(lengths) + _little_endian(ends) + b"".join(self.pieces)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> VocabularyPieces:
        """Raises ValueError for bytes `pack` did not write."""
        view = memoryview(data)
        if len(view) < 8:
            raise ValueError("not a packed vocabulary")
        count, end_count = struct.unpack_from("<II", view)
        offset = 8
        lengths = array.array("I")
        lengths.frombytes(view[offset : offset + 4 * count])
        offset += 4 * count
        ends = array.array("I")
        ends.frombytes(view[offset : offset + 4 * end_count])
        offset += 4 * end_count
        if sys.byteorder == "big":  # pragma: no cover - stored little-endian
            lengths.byteswap()
            ends.byteswap()
        if len(lengths) != count or len(ends) != end_count or offset + sum(lengths) != len(view):
            raise ValueError("not a packed vocabulary")
        blob = bytes(view[offset:])
        starts = [0, *itertools.accumulate(lengths)]
        pieces = [blob[start:end] for start, end in itertools.pairwise(starts)]
        return cls(pieces, list(ends))

    def matches(self, vocab: Any) -> bool:
        """Whether these are `vocab`'s pieces: its token count, its ends, and a sample of tokens
        spread over the vocabulary read again (a wrong entry fails here, not in a grammar)."""
        lib = llama_cpp.llama_cpp._lib
        count = lib.llama_vocab_n_tokens(vocab)
        if count != len(self.pieces) or not count:
            return False
        if self.ends != [t for t in self.ends if lib.llama_vocab_is_eog(vocab, t)]:
            return False
        sample = {*range(0, count, max(1, count // 64)), count - 1, *self.ends}
        buffer = ctypes.create_string_buffer(_MAX_PIECE + 1)
        return all(_piece(lib, vocab, token, buffer) == self.pieces[token] for token in sample)


def vocabulary_pieces(vocab: Any) -> VocabularyPieces:
    """Read every token of a llama.cpp vocabulary (about a second for 150k tokens)."""
    lib = llama_cpp.llama_cpp._lib  # the bound C functions: 3x faster than the wrappers here
    count = lib.llama_vocab_n_tokens(vocab)
    buffer = ctypes.create_string_buffer(_MAX_PIECE + 1)
    pieces = [_piece(lib, vocab, token, buffer) for token in range(count)]
    ends = [token for token in range(count) if lib.llama_vocab_is_eog(vocab, token)]
    return VocabularyPieces(pieces, ends)


def _piece(lib: Any, vocab: Any, token: int, buffer: Any) -> bytes:
    size = lib.llama_token_to_piece(vocab, token, buffer, _MAX_PIECE, 0, True)
    piece: bytes = buffer.raw[: max(size, 0)]
    if lib.llama_vocab_get_attr(vocab, token) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL:
        piece = _SPECIAL + piece
    return piece


def _little_endian(values: array.array[int]) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover
        values = array.array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def grammar_tokenizer(vocab: Any, pieces: VocabularyPieces | None = None) -> LLTokenizer:
    """llguidance's view of a llama.cpp vocabulary (free it before the model: it calls into the
    vocabulary); `pieces` are `vocabulary_pieces(vocab)`, read now when not given.

    Unlike `llguidance.llamacpp.lltokenizer_from_vocab`, only control tokens are special: a
    token the model was taught as text, such as Qwen's `<tool_call>` or an R1 `<think>`, matches
    the same text in a grammar, as it does in llama.cpp's own grammars. Every end-of-generation
    token counts as the end of the grammar. No mask-speeding "slices": masks are computed only
    when a sampled token is rejected, and building them doubled the set-up time.
    """
    lib = llama_cpp.llama_cpp._lib
    pieces = pieces or vocabulary_pieces(vocab)
    tokenize = ctypes.cast(lib.llama_tokenize, ctypes.c_void_p).value
    return LLTokenizer.from_llamacpp(  # type: ignore[attr-defined, no-any-return]
        tokens=pieces.pieces,
        vocab_ptr=vocab,
        tokenize_fptr=tokenize,
        eos_token=pieces.ends or [lib.llama_vocab_eos(vocab)],
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
