"""Models from a reference: `embedded`, `demo-1.5b`, a GGUF path, `ollama:`/`hf:`, a server URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from verity.errors import UserError
from verity.models.base import DeltaKind
from verity.models.embedded import NAMED_MODELS, AssemblyProgress
from verity.models.llama_cpp import LlamaCppModel, check_gguf_file
from verity.models.openai_compat import OpenAICompatModel
from verity.models.refs import EMBEDDED_REF, resolve_model_ref
from verity.settings import ModelSettings

__all__ = [
    "EMBEDDED_MODEL_TEMPERATURE",
    "Loader",
    "is_server_url",
    "judge_model",
    "local_model",
    "server_model",
]

# At 0.5B parameters sampling noise decides whether the model uses the calculator or guesses,
# so the bundled demo models decode greedily unless a temperature is given; any other model
# gets the R1 defaults (0.6 / 0.95).
EMBEDDED_MODEL_TEMPERATURE = 0.0

Loader = Callable[[str, Callable[[], Any]], Any]
"""Called with a label (name and size) and the function that loads the weights, to call it."""


def is_server_url(ref: str) -> bool:
    """Whether `ref` is the base URL of an OpenAI-compatible server rather than a local model."""
    return ref.startswith(("http://", "https://"))


def local_model(
    ref: str = EMBEDDED_REF,
    settings: ModelSettings | None = None,
    *,
    on_delta: Callable[[DeltaKind, str], None] | None = None,
    on_load: Loader | None = None,
    on_assembly: AssemblyProgress | None = None,
) -> LlamaCppModel:
    """The local GGUF model `ref` names, not loaded yet (it loads on first use).

    Args:
        ref: `embedded`, `demo-1.5b`, `ollama:NAME[:TAG]`, `hf:ORG/REPO/FILE` or a GGUF path.
        settings: How to load and sample it; the bundled models decode greedily unless the
            settings set a temperature.
        on_delta: Called with each piece of reasoning or answer text as it is generated.
        on_load: Shows the loading: called with a label and the loading function.
        on_assembly: Told how the first assembly of a bundled model from its parts goes.

    Raises:
        UserError: the model is missing or not a GGUF, or `ref` names nothing Verity can find.
    """
    settings = settings or ModelSettings()
    if ref in (EMBEDDED_REF, *NAMED_MODELS) and "temperature" not in settings.model_fields_set:
        settings = settings.model_copy(update={"temperature": EMBEDDED_MODEL_TEMPERATURE})
    resolved = resolve_model_ref(ref, progress=on_assembly)
    load_hook = None
    if on_load is not None:

        def load_hook(load: Callable[[], Any]) -> Any:
            label = f"{resolved.name} ({resolved.path.stat().st_size / 1e9:.1f} GB)"
            return on_load(label, load)

    return LlamaCppModel(
        resolved.path, settings, name=resolved.name, on_delta=on_delta, on_load=load_hook
    )


def judge_model(model: LlamaCppModel, verifier_model: Path | None = None) -> LlamaCppModel:
    """The model verifiers call: `verifier_model` with `model`'s settings, else `model`'s
    weights on a context of their own (made on first use), so that the run's KV prefix survives
    each verdict.

    Raises:
        UserError: `verifier_model` is missing or not a GGUF file.
    """
    if verifier_model is None:
        return model.with_own_context()
    check_gguf_file(verifier_model, option="--verifier-model")
    return LlamaCppModel(verifier_model, model.settings)


def server_model(
    base_url: str,
    api_model: str | None,
    *,
    settings: ModelSettings | None = None,
    api_key: str | None = None,
    stream: bool = False,
    on_delta: Callable[[DeltaKind, str], None] | None = None,
) -> OpenAICompatModel:
    """The model `api_model` served at `base_url` (llama-server, vLLM, SGLang, Ollama, ...).

    Only the sampling settings that were set explicitly (temperature, seed, max_tokens) are
    sent; the rest are the server's business.

    Raises:
        UserError: `api_model` is missing or the URL is bad.
    """
    if not api_model:
        raise UserError(
            f"The server at {base_url} needs a model name (api_model): the name it serves the "
            "model under.",
            field="api_model",
        )
    settings = settings or ModelSettings()
    chosen = settings.model_fields_set
    sampling = {
        k: getattr(settings, k) for k in ("temperature", "seed", "max_tokens") if k in chosen
    }
    return OpenAICompatModel(
        base_url, api_model, api_key=api_key, stream=stream, on_delta=on_delta, **sampling
    )
