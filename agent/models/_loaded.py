"""A loaded GGUF model and the guard around it: what `LlamaCppModel` holds once it has loaded.

`NativeState` is what `with_sampling()` twins share: the guard (whoever is inside llama.cpp
holds it) and the loaded model, freed only under the guard. A model on a context of its own
(`with_own_context()`) has a state of its own whose context shares the loaded weights.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verity.errors import ModelError
from verity.models._context import llama_on_own_context
from verity.models._llama_setup import load_llama
from verity.models._native import AbortFlag, NativeGuard, route_native_log
from verity.models._relevance import RelevanceGate
from verity.models._template import ChatTemplate
from verity.settings import ModelSettings

__all__ = ["Loaded", "NativeState", "load_model", "on_own_context"]


@dataclass
class Loaded:
    """A loaded model: the Llama, what its GGUF says about prompts, and the gate's context."""

    llm: Any
    template: ChatTemplate
    template_source: str
    bos_token: str
    add_bos: bool
    gate: RelevanceGate | None = None
    tokenizers: dict[str, Any] = field(default_factory=dict)
    """llguidance's tokenizer, built on first use; it points into the weights' vocabulary."""


@dataclass
class NativeState:
    """The guard and, once loaded, the model."""

    guard: NativeGuard = field(default_factory=NativeGuard)
    loaded: Loaded | None = None
    load_error: Exception | None = None
    """Why a load in the background failed; raised to the first caller that needs the model."""
    loading: threading.Event | None = None
    """The stop request of a load in the background that has not ended yet."""

    def free(self) -> None:
        """Free the native objects (on a context of its own: only that context); the caller
        holds the guard."""
        loaded, self.loaded = self.loaded, None
        if loaded is not None:
            if loaded.gate is not None:
                loaded.gate.close()
            loaded.llm.close()


def load_model(
    path: Path,
    settings: ModelSettings,
    on_load: Callable[[Callable[[], Any]], Any] | None,
    abort: AbortFlag,
) -> Loaded:
    """Load the GGUF at `path`, with decodes that abort while `abort` is set.

    Raises:
        ModelError: llama.cpp could not load it, or it has no chat template.
    """
    route_native_log()
    llm = load_llama(path, settings, on_load)
    metadata = llm.metadata
    source = metadata.get("tokenizer.chat_template")
    if not source:
        llm.close()
        raise ModelError(f"{path.name} has no chat template in its GGUF metadata.")
    abort.attach(llm._ctx.ctx)
    bos_token = _token_text(llm, metadata, "tokenizer.ggml.bos_token_id")
    template = ChatTemplate(
        source,
        bos_token=bos_token,
        eos_token=_token_text(llm, metadata, "tokenizer.ggml.eos_token_id"),
    )
    add_bos = str(metadata.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
    loaded = Loaded(llm, template, source, bos_token, add_bos)
    if settings.relevance_gate:
        loaded.gate = RelevanceGate(llm, template, threshold=settings.relevance_threshold)
        abort.attach(loaded.gate.context)
    return loaded


def on_own_context(base: Loaded, *, n_ctx: int, abort: AbortFlag) -> Loaded:
    """`base`'s weights on a new context of `n_ctx` tokens, aborting while `abort` is set."""
    llm = llama_on_own_context(base.llm, n_ctx=n_ctx)
    abort.attach(llm._ctx.ctx)
    return Loaded(
        llm,
        base.template,
        base.template_source,
        base.bos_token,
        base.add_bos,
        tokenizers=base.tokenizers,
    )


def _token_text(llm: Any, metadata: dict[str, str], key: str) -> str:
    if key not in metadata:
        return ""
    token = int(metadata[key])
    return bytes(llm.detokenize([token], special=True)).decode("utf-8", errors="ignore")
