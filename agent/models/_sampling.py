"""Token sampling with an optional grammar: llama.cpp's sampler chain, llguidance's grammar.

llama-cpp-python applies a grammar to the whole vocabulary at every step, which costs about 40%
of decode speed on a 152k-token vocabulary. This does what llama.cpp's own common sampler does:
sample without the grammar, check that single token against it, and mask the whole vocabulary
only when the token is rejected. A top-k prefilter would be faster still but llama.cpp aborts
the process when no candidate is legal; this path never does.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np
from llguidance import LLTokenizer

from verity.models.grammar import Constraint

__all__ = ["GrammarRejectedError", "TokenSampler"]

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)


class GrammarRejectedError(RuntimeError):
    """No token the model can produce is allowed by the grammar."""


class TokenSampler:
    """Samples the next token from a llama.cpp context, with a grammar switched on or off."""

    def __init__(
        self,
        llm: Any,
        *,
        temperature: float,
        top_p: float,
        top_k: int,
        min_p: float,
        seed: int,
        tokenizer: LLTokenizer | None = None,
    ) -> None:
        """`tokenizer` (from `grammar_tokenizer`) is needed only to use grammars."""
        self._llm = llm
        self._tokenizer = tokenizer
        self._vocab = llm._model.vocab
        self._n_vocab = llm.n_vocab()
        params = llama_cpp.llama_sampler_chain_default_params()
        self._chain = llama_cpp.llama_sampler_chain_init(params)
        if temperature <= 0:
            llama_cpp.llama_sampler_chain_add(self._chain, llama_cpp.llama_sampler_init_greedy())
        else:
            for sampler in (
                llama_cpp.llama_sampler_init_top_k(top_k),
                llama_cpp.llama_sampler_init_top_p(top_p, 1),
                llama_cpp.llama_sampler_init_min_p(min_p, 1),
                llama_cpp.llama_sampler_init_temp(temperature),
                llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF),
            ):
                llama_cpp.llama_sampler_chain_add(self._chain, sampler)
        self._grammar: Constraint | None = None
        self.abandoned: str | None = None
        """Why the grammar was abandoned mid-generation (llguidance hit a limit), if it was."""

    def close(self) -> None:
        """Free the native samplers."""
        self.use_grammar(None)
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None

    def use_grammar(self, grammar: str | None) -> None:
        """Constrain the following tokens by `grammar` (Lark, `start` rule), or stop constraining.

        Raises:
            GrammarError: llguidance refused the grammar.
        """
        self._grammar = None
        if grammar is not None:
            if self._tokenizer is None:
                raise ValueError("a grammar needs the sampler's tokenizer")
            self._grammar = Constraint(self._tokenizer, grammar)

    def is_eog(self, token: int) -> bool:
        """Whether `token` ends generation (end of turn or of text)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def sample(self) -> int:
        """Sample from the logits of the last evaluated token.

        A grammar that can go no further (llguidance hit one of its limits, or the grammar
        allows nothing the model can write) is abandoned and the rest is sampled freely: the
        calls are validated afterwards anyway, and an invalid one becomes a retry.
        """
        ctx = self._llm._ctx.ctx
        token = int(llama_cpp.llama_sampler_sample(self._chain, ctx, -1))
        grammar = self._grammar
        if grammar is None:
            return token
        if not grammar.allows(token):
            try:
                token = self._sample_with_grammar(ctx, grammar)
            except GrammarRejectedError as exc:
                self.abandoned, self._grammar = str(exc), None
                return token
        if not self.is_eog(token) and not grammar.accept(token):
            self.abandoned, self._grammar = grammar.error or "the grammar failed", None
        return token

    def _sample_with_grammar(self, ctx: Any, grammar: Constraint) -> int:
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(ctx, -1), shape=(self._n_vocab,)
        )
        allowed = grammar.allowed_mask(self._n_vocab)
        if not allowed.any():
            raise GrammarRejectedError(grammar.error or "the grammar allows no next token")
        data = np.empty(self._n_vocab, dtype=_TOKEN_DATA)
        data["id"] = np.arange(self._n_vocab, dtype=np.int32)
        data["logit"] = np.where(allowed, logits, -np.inf)
        data["p"] = 0.0
        candidates = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data)),
            size=self._n_vocab,
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(candidates))
        if candidates.selected < 0:
            raise GrammarRejectedError("the sampler selected no token")
        token = int(candidates.data[candidates.selected].id)
        if not grammar.allows(token):
            raise GrammarRejectedError(grammar.error or "the grammar allows no next token")
        return token
