"""The relevance gate: does any offered tool do what the user asked? (BFCL "irrelevance").

Small local models call some tool for nearly every request, even when none fits. Asked
directly, in a short prompt of their own that lists only the tools' names and descriptions,
the same models separate the cases well by the margin of "Yes" over "No" (measured on the
embedded 0.5B model: relevant requests +0.20..+0.93, irrelevant ones mostly below +0.05).

The question runs on a second, small llama.cpp context that shares the loaded weights, so the
main conversation's KV cache is untouched and no weights are loaded twice.
"""

from __future__ import annotations

from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

from verity.messages import Message
from verity.models._template import ChatTemplate
from verity.tools.base import ToolSpec

__all__ = ["RelevanceGate"]

QUESTION = "Can one of these functions do exactly what the request asks? Answer Yes or No."
GATE_CONTEXT = 1024


class RelevanceGate:
    """Asks the model, on its own small context, whether a call makes sense at all."""

    def __init__(self, llm: Any, template: ChatTemplate, *, threshold: float) -> None:
        self._llm = llm
        self._template = template
        self.threshold = threshold
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = GATE_CONTEXT
        params.n_batch = GATE_CONTEXT
        params.n_ubatch = min(512, GATE_CONTEXT)
        params.n_threads = llm.context_params.n_threads
        params.n_threads_batch = llm.context_params.n_threads_batch
        params.flash_attn_type = llm.context_params.flash_attn_type
        params.type_k = llm.context_params.type_k
        params.type_v = llm.context_params.type_v
        params.offload_kqv = llm.context_params.offload_kqv
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(
            n_tokens=GATE_CONTEXT, embd=0, n_seq_max=1, verbose=False
        )
        self._cached: list[int] = []
        self._yes = self._first_tokens("Yes", "yes")
        self._no = self._first_tokens("No", "no")

    def _first_tokens(self, *words: str) -> list[int]:
        return [self._llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words]

    @property
    def context(self) -> Any:
        """The gate's `llama_context *`."""
        return self._ctx.ctx

    def close(self) -> None:
        """Free the gate's context."""
        self._batch.close()
        self._ctx.close()

    def margin(self, messages: list[Message], tools: list[ToolSpec]) -> float | None:
        """Logit margin of "Yes" over "No"; None when there is no request or it does not fit."""
        # The first user message is the request; later ones are usually the runtime's own
        # retry or verifier feedback, which no tool "does".
        request = next((m.content for m in messages if m.role == "user"), "")
        if not request or not tools:
            return None
        listing = "\n".join(f"- {t.name}: {t.description}" for t in tools)
        prompt = self._template.render(
            [
                Message(
                    role="system",
                    content="You decide whether a request can be done with the given functions.",
                ),
                Message(
                    role="user",
                    content=f"Functions:\n{listing}\n\nRequest: {request}\n\n{QUESTION}",
                ),
            ],
            [],
        )
        tokens = self._llm.tokenize(prompt.encode(), add_bos=False, special=True)
        if len(tokens) > GATE_CONTEXT:
            return None
        # Within a run the gate asks the same question again: reuse the cached prefix.
        common = 0
        for cached, token in zip(self._cached, tokens, strict=False):
            if cached != token:
                break
            common += 1
        common = min(common, len(tokens) - 1)
        if not self._ctx.kv_cache_seq_rm(-1, common, -1):
            self._ctx.kv_cache_clear()
            common = 0
        # an aborted decode leaves only the common prefix trustworthy in the cache
        self._cached = tokens[:common]
        self._batch.set_batch(tokens[common:], n_past=common, logits_all=False)
        self._ctx.decode(self._batch)
        self._cached = tokens
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(self._ctx.ctx, -1), shape=(self._llm.n_vocab(),)
        )
        return float(logits[self._yes].max() - logits[self._no].max())

    def allows_call(self, messages: list[Message], tools: list[ToolSpec]) -> bool:
        """False only when the model itself says no tool fits the request."""
        margin = self.margin(messages, tools)
        return margin is None or margin >= self.threshold
