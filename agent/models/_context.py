"""A second llama.cpp context on weights already loaded: its own KV cache, no second copy.

A verifier's model calls on the run's context would overwrite the run's KV cache, so the next
step of the run re-reads its whole prompt. On a context of their own they leave it intact (the
relevance gate does the same with a small raw context); this one is a whole `Llama` object, so
the ordinary generation path (`_generation.generate`) runs on it unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

__all__ = ["llama_on_own_context"]


def llama_on_own_context(llm: Any, *, n_ctx: int) -> Any:
    """A `Llama` that shares `llm`'s weights and tokenizer but has a context of `n_ctx` tokens.

    Its `close()` frees only its own context and batch; `llm` must stay open while it is used
    and be closed after it.
    """
    twin = object.__new__(type(llm))
    # everything but the context-bound state is shared: weights, vocabulary, metadata
    twin.__dict__.update(llm.__dict__)
    params = llama_cpp.llama_context_default_params()
    source = llm.context_params
    params.n_ctx = n_ctx
    params.n_batch = min(llm.n_batch, n_ctx)
    params.n_ubatch = min(source.n_ubatch, params.n_batch)
    params.n_threads = source.n_threads
    params.n_threads_batch = source.n_threads_batch
    params.flash_attn_type = source.flash_attn_type
    params.type_k = source.type_k
    params.type_v = source.type_v
    params.offload_kqv = source.offload_kqv
    stack = contextlib.ExitStack()
    context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    stack.enter_context(contextlib.closing(context))
    batch = _internals.LlamaBatch(n_tokens=params.n_batch, embd=0, n_seq_max=1, verbose=False)
    stack.enter_context(contextlib.closing(batch))
    n_vocab = llm.n_vocab()
    twin.__dict__.update(
        _stack=stack,
        _ctx=context,
        _batch=batch,
        context_params=params,
        n_batch=params.n_batch,
        _n_ctx=n_ctx,
        n_tokens=0,
        _requires_eval=True,
        _logits_all=False,
        input_ids=np.ndarray((n_ctx,), dtype=np.intc),
        scores=np.ndarray((params.n_batch, n_vocab), dtype=np.single),
        _candidates=_internals.LlamaTokenDataArray(n_vocab=n_vocab),
        _sampler=None,
        cache=None,
    )
    return twin
