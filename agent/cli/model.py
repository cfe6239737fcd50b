"""`verity run --base-url`: the options and model for an OpenAI-compatible server."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from verity.errors import UserError
from verity.models.base import DeltaKind
from verity.models.openai_compat import OpenAICompatModel

__all__ = ["add_server_options", "server_model"]

# options that configure a local GGUF model and mean nothing to a server
_GGUF_ONLY = ("model", "n_ctx", "threads", "n_gpu_layers", "flash_attn", "max_thinking_tokens",
              "verifier_model", "prefix_cache", "prefix_cache_dir",
              "prefix_cache_max_bytes")  # fmt: skip


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Add --base-url, --api-model and --stream (the API key comes from $VERITY_API_KEY only)."""
    group = parser.add_argument_group("OpenAI-compatible server (API key: $VERITY_API_KEY)")
    group.add_argument(
        "--base-url", metavar="URL", default=os.environ.get("VERITY_BASE_URL") or None,
        help="use the server at URL, e.g. http://127.0.0.1:8080/v1 (default: $VERITY_BASE_URL)",
    )  # fmt: skip
    group.add_argument(
        "--api-model", metavar="NAME", default=os.environ.get("VERITY_API_MODEL") or None,
        help="the served model's name, needed with --base-url (default: $VERITY_API_MODEL)",
    )  # fmt: skip
    group.add_argument("--stream", action="store_true", help="read answers as server-sent events")


def server_model(
    args: argparse.Namespace, *, on_delta: Callable[[DeltaKind, str], None] | None = None
) -> OpenAICompatModel | None:
    """The server model `verity run` was pointed at; None without --base-url.

    `on_delta` is passed each piece of streamed text (with --stream).

    Raises:
        UserError: --api-model is missing, a local-model option is given too, or the URL is bad.
    """
    if args.base_url is None:
        if args.stream:
            raise UserError("--stream needs --base-url.", field="stream")
        return None
    if not args.api_model:
        raise UserError("--base-url needs --api-model NAME (or $VERITY_API_MODEL): the name the "
                        "server serves the model under.", field="api_model")  # fmt: skip
    for dest in _GGUF_ONLY:
        if getattr(args, dest) not in (None, False):
            option = "--" + dest.replace("_", "-")
            raise UserError(f"{option} is for a local GGUF model; it cannot be combined with "
                            "--base-url.", field=dest)  # fmt: skip
    if args.verify != "none":
        raise UserError("--verify is not supported with --base-url yet.", field="verify")
    sampling = {"temperature": args.temperature, "seed": args.seed, "max_tokens": args.max_tokens}
    return OpenAICompatModel(
        args.base_url,
        args.api_model,
        api_key=os.environ.get("VERITY_API_KEY") or None,
        stream=args.stream,
        on_delta=on_delta,
        **{key: value for key, value in sampling.items() if value is not None},
    )
