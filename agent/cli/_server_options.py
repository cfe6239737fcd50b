"""`--base-url`, `--api-model`, `--stream`: an OpenAI-compatible server instead of a GGUF."""

from __future__ import annotations

import argparse
import os

from verity.errors import UserError

__all__ = ["add_server_options", "check_server_options"]

# options that configure a local GGUF model and mean nothing to a server
_GGUF_ONLY = (
    "model",
    "n_ctx",
    "threads",
    "n_gpu_layers",
    "flash_attn",
    "max_thinking_tokens",
    "verifier_model",
    "prefix_cache",
    "prefix_cache_dir",
    "prefix_cache_max_bytes",
)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Add --base-url, --api-model and --stream (the API key comes from $VERITY_API_KEY only)."""
    group = parser.add_argument_group("OpenAI-compatible server (API key: $VERITY_API_KEY)")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=os.environ.get("VERITY_BASE_URL") or None,
        help="use the server at URL, e.g. http://127.0.0.1:8080/v1 (default: $VERITY_BASE_URL)",
    )
    group.add_argument(
        "--api-model",
        metavar="NAME",
        default=os.environ.get("VERITY_API_MODEL") or None,
        help="the served model's name, needed with --base-url (default: $VERITY_API_MODEL)",
    )
    group.add_argument("--stream", action="store_true", help="read answers as server-sent events")


def check_server_options(args: argparse.Namespace) -> None:
    """Check the options of `verity run --base-url` (and `verity serve --base-url`).

    Raises:
        UserError: --api-model is missing, a local-model option is given too, or --stream is
            given without --base-url.
    """
    if args.base_url is None:
        if args.stream:
            raise UserError("--stream needs --base-url.", field="stream")
        return
    if not args.base_url.startswith(("http://", "https://")):
        raise UserError(
            f"--base-url {args.base_url!r} is not an http(s) URL, e.g. http://127.0.0.1:8080/v1.",
            field="base_url",
        )
    if not args.api_model:
        raise UserError(
            "--base-url needs --api-model NAME (or $VERITY_API_MODEL): the name the "
            "server serves the model under.",
            field="api_model",
        )
    for dest in _GGUF_ONLY:
        if getattr(args, dest) not in (None, False):
            option = "--" + dest.replace("_", "-")
            raise UserError(
                f"{option} is for a local GGUF model; it cannot be combined with --base-url.",
                field=dest,
            )
    if args.verify != "none":
        raise UserError("--verify is not supported with --base-url yet.", field="verify")
