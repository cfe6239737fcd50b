"""Before llama.cpp loads a model: is the file a GGUF, and which arguments do the settings
give `llama_cpp.Llama` (GPU options included)?"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verity.errors import GPUOffloadWarning, KVCacheWarning, ModelError, UserError
from verity.models.gguf_info import read_gguf_info
from verity.settings import ModelSettings

__all__ = [
    "check_gguf_file",
    "fit_context_size",
    "llama_kwargs",
    "load_llama",
    "warn_if_kv_cache_quantised",
    "warn_if_no_gpu_offload",
]

_KV_TYPES = {
    "f32": 0,
    "f16": 1,
    "q4_0": 2,
    "q4_1": 3,
    "q5_0": 6,
    "q5_1": 7,
    "q8_0": 8,
    "iq4_nl": 20,
    "bf16": 30,
}
_FULL_PRECISION_KV = {"f32", "f16", "bf16"}

_UNSET_OPTION = {
    "--model": " (or VERITY_MODEL), or leave both unset to use the embedded default model",
    "--verifier-model": ", or leave it out to verify with the run's own model",
}


def check_gguf_file(path: Path, *, option: str = "--model") -> None:
    """Fail early, with what to do, when `path` cannot be a GGUF model.

    Args:
        path: The model file.
        option: The command-line option that named it; messages and the error's field name it.

    Raises:
        UserError: the file is missing, is a directory, or does not start with the GGUF magic.
    """
    field = option.removeprefix("--").replace("-", "_")
    name = "Model" if option == "--model" else f"The {option}"
    if not path.exists():
        unset = _UNSET_OPTION.get(option, ", or leave it out")
        raise UserError(
            f"{name} file {str(path)!r} does not exist. Pass the path of a GGUF file with "
            f"{option}{unset}.",
            field=field,
        )
    if not path.is_file():
        raise UserError(f"{name} path {str(path)!r} is a directory, not a GGUF file.", field=field)
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise UserError(
            f"{name} file {str(path)!r} is not a GGUF file (it does not start with 'GGUF'). "
            "Verity runs llama.cpp GGUF models; convert or download the model in GGUF format.",
            field=field,
        )


def fit_context_size(path: Path, settings: ModelSettings) -> ModelSettings:
    """`settings` with a context the model was trained for, checked before llama.cpp allocates it.

    A default `n_ctx` larger than the model's training context is lowered to it; one set
    explicitly is refused.

    Raises:
        UserError: an explicit `n_ctx` exceeds the training context the GGUF header names.
    """
    try:
        trained = read_gguf_info(path).context_length
    except UserError:  # a header llama.cpp refuses too: it says why when it loads the file
        return settings
    if not isinstance(trained, int) or settings.n_ctx <= trained:
        return settings
    if "n_ctx" not in settings.model_fields_set:
        return settings.model_copy(update={"n_ctx": trained})
    raise UserError(
        f"n_ctx {settings.n_ctx} is larger than the {trained} tokens {path.name} was trained "
        f"with; use at most {trained} (--n-ctx).",
        field="n_ctx",
    )


def load_llama(
    path: Path, settings: ModelSettings, on_load: Callable[[Callable[[], Any]], Any] | None = None
) -> Any:
    """Load `path` into a `llama_cpp.Llama`; `on_load`, if given, is handed the loading function
    to call (to show progress while it runs).

    Raises:
        ModelError: llama.cpp could not load the file.
    """
    import llama_cpp  # heavy native import: only when a model is really used

    warn_if_no_gpu_offload(settings, supported=llama_cpp.llama_supports_gpu_offload())

    def load() -> Any:
        return llama_cpp.Llama(str(path), **llama_kwargs(settings))

    try:
        return on_load(load) if on_load else load()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(
            f"llama.cpp could not load {str(path)!r} ({exc}). The file may be truncated "
            "or corrupt, or made for a newer llama.cpp: check its size and checksum."
        ) from None


def llama_kwargs(settings: ModelSettings) -> dict[str, Any]:
    """The `llama_cpp.Llama` arguments for `settings`, GPU options included."""
    kwargs: dict[str, Any] = {
        "n_ctx": settings.n_ctx,
        "n_batch": settings.n_batch,
        "n_threads": settings.n_threads,
        # prompt evaluation too: llama.cpp would use every core there, and threads that wait on
        # each other at every barrier cost 5-7x the CPU on a busy machine (measured, 2 cores)
        "n_threads_batch": settings.n_threads,
        "n_gpu_layers": settings.n_gpu_layers,
        "main_gpu": settings.main_gpu,
        "tensor_split": settings.tensor_split,
        "flash_attn": settings.flash_attn,
        "offload_kqv": settings.offload_kqv,
        "seed": settings.seed,
        "verbose": False,
    }
    if settings.type_k is not None:
        kwargs["type_k"] = _KV_TYPES[settings.type_k]
    if settings.type_v is not None:
        kwargs["type_v"] = _KV_TYPES[settings.type_v]
    return kwargs


def warn_if_kv_cache_quantised(settings: ModelSettings) -> None:
    chosen = {"type_k": settings.type_k, "type_v": settings.type_v}
    quantised = [f"{k}={v}" for k, v in chosen.items() if v and v not in _FULL_PRECISION_KV]
    if quantised:
        warnings.warn(
            f"A quantised KV cache ({', '.join(quantised)}) degrades tool calling: expect wrong "
            "tools and arguments more often. Use f16 (the default) unless memory forces it.",
            KVCacheWarning,
            stacklevel=3,  # the caller that created the model
        )


_gpu_warning_given = False


def warn_if_no_gpu_offload(settings: ModelSettings, *, supported: bool) -> None:
    """Warn, once per process, when layers are to be offloaded but llama.cpp cannot offload.

    `supported` is `llama_cpp.llama_supports_gpu_offload()`: False for a CPU-only build, which
    otherwise runs every layer on the CPU without a word.
    """
    global _gpu_warning_given
    if settings.n_gpu_layers == 0 or supported or _gpu_warning_given:
        return
    _gpu_warning_given = True
    warnings.warn(
        f"n_gpu_layers={settings.n_gpu_layers} asks for GPU offload, but this llama-cpp-python "
        "is a CPU-only build (llama_supports_gpu_offload() is false), so the model runs on the "
        'CPU. Reinstall it for your GPU, e.g. CMAKE_ARGS="-DGGML_CUDA=on" pip install '
        "--force-reinstall --no-cache-dir llama-cpp-python (see docs/gpu.md).",
        GPUOffloadWarning,
        stacklevel=5,  # the caller of respond() or llama
    )
