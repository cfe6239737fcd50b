"""Defaults for the `verity` options: a TOML file in the user config dir, then `VERITY_*`.

Each key of `config.toml` is the name of a command-line option with `_` for `-` (`n_gpu_layers`
is `--n-gpu-layers`), and each has an environment variable, `VERITY_` and the key in upper case
(`VERITY_N_GPU_LAYERS`). An option given on the command line wins over the variable, which wins
over the file, which wins over the built-in default. An `[aliases]` table names models:
`coder = "hf:Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"` lets
`--model coder` (or `model = "coder"`) stand for that ref.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from verity.errors import UserError

__all__ = ["ENV_PREFIX", "FILE_ONLY", "Defaults", "apply_defaults", "config_path", "load_defaults"]

ENV_PREFIX = "VERITY_"
CONFIG_VARIABLE = "VERITY_CONFIG"

# the built-in defaults of options whose parser default is None, so that a configured value
# can be told apart from one given on the command line
_BUILT_IN = {"max_steps": 8, "verify": "none", "verify_rounds": 3}
_PATHS = {"trace_db", "verifier_model", "prefix_cache_dir"}
FILE_ONLY = {"aliases"}
"""Keys only the file holds: no `VERITY_*` variable."""
# keys that mean nothing to an OpenAI-compatible server (or that it cannot do yet): a configured
# base_url makes the file and the variables skip them instead of failing every run
_LOCAL_ONLY = {
    "model",
    "n_ctx",
    "threads",
    "n_gpu_layers",
    "flash_attn",
    "max_thinking_tokens",
    "verifier_model",
    "verify",
    "prefix_cache",
    "prefix_cache_dir",
    "prefix_cache_max_bytes",
}


class Defaults(BaseModel):
    """The keys `config.toml` may hold (each also a `VERITY_<KEY>` variable)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    """GGUF path, `embedded`, `ollama:NAME[:TAG]` or `hf:ORG/REPO/FILE` (`--model`)."""
    n_gpu_layers: int | None = None
    """Layers offloaded to the GPU, -1 all (`--n-gpu-layers`)."""
    n_ctx: int | None = Field(default=None, ge=256)
    """Context window in tokens (`--n-ctx`)."""
    threads: int | None = Field(default=None, ge=1)
    """CPU threads (`--threads`)."""
    flash_attn: bool | None = None
    """Flash attention (`--flash-attn`)."""
    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature, 0 greedy (`--temperature`)."""
    seed: int | None = None
    """Sampling seed (`--seed`)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Largest completion of one model call (`--max-tokens`)."""
    max_thinking_tokens: int | None = Field(default=None, ge=1)
    """Reasoning tokens before the thought is closed (`--max-thinking-tokens`)."""
    max_steps: int | None = Field(default=None, ge=1)
    """Model calls allowed per run (`--max-steps`)."""
    verify: str | None = None
    """Verification spec (`--verify`)."""
    verify_rounds: int | None = Field(default=None, ge=1)
    """Answers verified before the best is returned unverified (`--verify-rounds`)."""
    verifier_model: str | None = None
    """GGUF that self-check judges with (`--verifier-model`)."""
    system: str | None = None
    """System prompt replacing Verity's (`--system`)."""
    show_reasoning: bool | None = None
    """Stream the model's reasoning to stderr (`--show-reasoning`)."""
    prefix_cache: bool | None = None
    """Keep evaluated prompt prefixes on disk for the next run (`--prefix-cache`)."""
    prefix_cache_dir: str | None = None
    """Where the prefix cache lives (`--prefix-cache-dir`)."""
    prefix_cache_max_bytes: int | None = Field(default=None, ge=0)
    """The prefix cache's size bound (`--prefix-cache-max-bytes`)."""
    trace_db: str | None = None
    """Trace database (`--trace-db`)."""
    base_url: str | None = None
    """OpenAI-compatible server to use instead of a local GGUF (`--base-url`)."""
    api_model: str | None = None
    """The served model's name (`--api-model`)."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Short names `--model` takes for longer refs: the `[aliases]` table (no variable)."""


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$VERITY_CONFIG`, else `config.toml` in the user config directory."""
    environ = os.environ if environ is None else environ
    configured = environ.get(CONFIG_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_config_dir("verity")) / "config.toml"


def load_defaults(environ: Mapping[str, str] | None = None) -> Defaults:
    """The config file's values with the `VERITY_*` variables laid over them.

    Raises:
        UserError: the file is not valid TOML, holds an unknown key or a bad value, or a
            variable holds a bad value; the message names the file (or variable), key and fix.
    """
    environ = os.environ if environ is None else environ
    path = config_path(environ)
    values = _file_values(path, required=bool(environ.get(CONFIG_VARIABLE)))
    try:
        from_file = Defaults.model_validate(values, strict=True)
    except ValidationError as exc:
        raise _file_error(path, exc.errors()[0]) from None
    overrides: dict[str, Any] = {}
    for key in Defaults.model_fields.keys() - FILE_ONLY:
        variable = ENV_PREFIX + key.upper()
        if environ.get(variable):
            overrides[key] = environ[variable]
    try:
        from_env = Defaults.model_validate(overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = ENV_PREFIX + str(error["loc"][0]).upper()
        raise UserError(
            f"{variable} {_requirement(error)}, not {error['input']!r}. Fix or unset it.",
            field=variable,
        ) from None
    return from_file.model_copy(update=from_env.model_dump(exclude_none=True, exclude=FILE_ONLY))


def _file_values(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise UserError(
                f"{CONFIG_VARIABLE} names {str(path)!r}, which is not a file. Point "
                "it at a config.toml, or unset it.",
                field=CONFIG_VARIABLE,
            )
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(
            f"{path}: not valid TOML ({exc}). Fix the file, or remove it.", field="config"
        ) from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror}).", field="config") from None


def _file_error(path: Path, error: ErrorDetails) -> UserError:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        known = ", ".join(Defaults.model_fields)
        return UserError(
            f"{path}: unknown key {key!r}. Remove it; the keys are: {known}.", field=key
        )
    return UserError(
        f"{path}: {key} {_requirement(error)}, not {error['input']!r}. Fix the value, or remove "
        "the key.",
        field=key,
    )


def _requirement(error: ErrorDetails) -> str:
    context = error.get("ctx") or {}
    if error["type"] == "greater_than_equal":
        return f"must be at least {context['ge']}"
    # pydantic's message, first clause only: "Input should be a valid integer, unable to ..."
    return error["msg"].split(",")[0].replace("Input should be", "must be")


def apply_defaults(args: argparse.Namespace, defaults: Defaults) -> None:
    """Fill each option of `args` that the command line left unset (None) from `defaults`,
    then from the built-in defaults. With a server URL, local-model keys are left unset."""
    chosen = defaults.model_dump(exclude_none=True, exclude=FILE_ONLY)
    if getattr(args, "base_url", None) or chosen.get("base_url"):
        chosen = {k: v for k, v in chosen.items() if k not in _LOCAL_ONLY}
    for key, value in chosen.items():
        if getattr(args, key, False) is None:
            setattr(args, key, Path(value).expanduser() if key in _PATHS else value)
    for key, value in _BUILT_IN.items():
        if getattr(args, key, False) is None:
            setattr(args, key, value)
    model = getattr(args, "model", None)
    if isinstance(model, str) and model in defaults.aliases:
        args.model = defaults.aliases[model]
