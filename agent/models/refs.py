"""Models a user already has: `ollama:NAME[:TAG]` and `hf:ORG/REPO[/FILE|:QUANT]` to GGUF files.

Both are read from the local stores only, never downloaded. Ollama keeps a manifest per model
(`manifests/<host>/<namespace>/<name>/<tag>`) whose layer of media type
`application/vnd.ollama.image.model` names the GGUF blob (`blobs/sha256-<digest>`). The Hugging
Face hub cache keeps `models--ORG--REPO/snapshots/<revision>/<file>`, with `refs/main` naming
the revision a plain download got.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from verity.errors import UserError
from verity.models.embedded import (
    EMBEDDED_MODEL,
    NAMED_MODELS,
    AssemblyProgress,
    assembled_path,
    embedded_model_path,
)

__all__ = [
    "EMBEDDED_REF",
    "FoundModel",
    "ResolvedModel",
    "find_models",
    "hf_cache_dir",
    "ollama_models_dir",
    "resolve_model_ref",
]

EMBEDDED_REF = "embedded"
_OLLAMA_HOST = "registry.ollama.ai"
_OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


@dataclass(frozen=True)
class ResolvedModel:
    """A GGUF file and the name to show for it."""

    path: Path
    name: str


@dataclass(frozen=True)
class FoundModel:
    """A model found in one of the places `verity models` looks."""

    ref: str
    """What to pass to `--model`."""
    path: Path
    source: str
    """`embedded`, `configured`, `ollama` or `hf`."""
    size_bytes: int | None = None
    """The model's size when it is not the file's (the embedded model before assembly)."""


def ollama_models_dir() -> Path:
    """Ollama's store: `$OLLAMA_MODELS`, else `~/.ollama/models` (or the Linux service's)."""
    configured = os.environ.get("OLLAMA_MODELS")
    if configured:
        return Path(configured).expanduser()
    home = Path.home() / ".ollama" / "models"
    service = Path("/usr/share/ollama/.ollama/models")  # the Linux install script's user
    return service if not home.exists() and service.exists() else home


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, found the way `huggingface_hub` finds it."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "huggingface" / "hub"


def resolve_model_ref(ref: str, *, progress: AssemblyProgress | None = None) -> ResolvedModel:
    """The GGUF file `ref` names: `embedded`, `demo-1.5b`, `ollama:...`, `hf:...`, or a path.

    A path is returned as given (`check_gguf_file` judges it when the model is created);
    `progress` is told how the first assembly of the embedded model goes.

    Raises:
        UserError: an Ollama or Hugging Face model is not in the local store; the message lists
            what is there and how to get it.
    """
    if ref in NAMED_MODELS:  # `embedded`, `demo-1.5b`
        named = NAMED_MODELS[ref]
        return ResolvedModel(embedded_model_path(named, progress=progress), named.name)
    if ref.startswith("ollama:"):
        return _ollama(ref.removeprefix("ollama:"))
    if ref.startswith("hf:"):
        return _hugging_face(ref.removeprefix("hf:"))
    path = Path(ref).expanduser()
    return ResolvedModel(path, path.stem)


def _ollama_parts(name: str) -> tuple[list[str], str]:
    """`[host/][namespace/]model[:tag]` -> manifest path parts and the tag."""
    base, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    parts = [p for p in base.split("/") if p]
    if len(parts) == 1:
        parts = [_OLLAMA_HOST, "library", *parts]
    elif len(parts) == 2:
        parts = [_OLLAMA_HOST, *parts]
    return parts, tag or "latest"


def _ollama(name: str) -> ResolvedModel:
    store = ollama_models_dir()
    parts, tag = _ollama_parts(name)
    if not name or len(parts) != 3:
        raise UserError(
            f"ollama:{name} is not an Ollama model name; write it as Ollama does, "
            "e.g. ollama:qwen2.5-coder:32b.",
            field="model",
        )
    manifest = store.joinpath("manifests", *parts, tag)
    if not manifest.is_file():
        known = ", ".join(ref.removeprefix("ollama:") for ref in _ollama_refs(store)) or "none"
        raise UserError(
            f"Ollama model {name!r} is not in the local store {store} (models there: {known}). "
            f"Get it with `ollama pull {name}`, or set OLLAMA_MODELS to the store it is in.",
            field="model",
        )
    blob = _ollama_blob(store, manifest)
    if blob is None:
        raise UserError(
            f"Ollama model {name!r}: its manifest {manifest} names no model blob "
            "that is in the store. Pull it again with `ollama pull`.",
            field="model",
        )
    shown = name if ":" in name.rsplit("/", 1)[-1] else f"{name}:{tag}"
    return ResolvedModel(blob, shown)


def _ollama_blob(store: Path, manifest: Path) -> Path | None:
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
    except (OSError, ValueError, AttributeError):
        return None
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and layer.get("mediaType") == _OLLAMA_MODEL_LAYER:
            digest = str(layer.get("digest", ""))
            blob = store / "blobs" / digest.replace(":", "-")
            return blob if digest and blob.is_file() else None
    return None


def _ollama_refs(store: Path) -> list[str]:
    """Every `ollama:` ref in the store, in the short form Ollama prints."""
    root = store / "manifests"
    refs = []
    for manifest in sorted(p for p in root.glob("*/*/*/*") if p.is_file()):
        host, namespace, model, tag = manifest.relative_to(root).parts
        prefix = "" if host == _OLLAMA_HOST else f"{host}/"
        prefix += "" if (host, namespace) == (_OLLAMA_HOST, "library") else f"{namespace}/"
        refs.append(f"ollama:{prefix}{model}:{tag}")
    return refs


_EXAMPLE_REPO = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"
_EXAMPLE_FILE = "qwen2.5-coder-0.5b-instruct-q8_0.gguf"


def _hugging_face(spec: str) -> ResolvedModel:
    """`ORG/REPO/FILE`, `ORG/REPO:QUANT` or `ORG/REPO` (its only GGUF)."""
    repo_part, _, file_part = spec.partition("/")[2].partition("/")
    org = spec.partition("/")[0]
    repo, _, quant = repo_part.partition(":")
    if not org or not repo:
        raise UserError(
            f"hf:{spec} does not name a repository; write hf:ORG/REPO/FILE.gguf, "
            f"e.g. hf:{_EXAMPLE_REPO}/{_EXAMPLE_FILE}.",
            field="model",
        )
    cache = hf_cache_dir()
    folder = cache / f"models--{org}--{repo}"
    files = _snapshot_ggufs(folder)
    if file_part:
        chosen = [f for f in files if f.relative == file_part]
    else:
        chosen = [f for f in files if quant.lower() in f.relative.lower() and _first_part(f)]
    if len(chosen) == 1 or (file_part and chosen):
        return ResolvedModel(chosen[0].path, Path(chosen[0].relative).stem)
    if file_part:
        missing = f"{file_part} is not in the Hugging Face cache {cache}"
    elif chosen:
        matching = f"match {quant}" if quant else "are"
        missing = f"{len(chosen)} GGUF files {matching} there; name one: hf:{org}/{repo}/FILE"
    else:
        wanted = f" for {quant}" if quant else ""
        missing = f"no GGUF file{wanted} in the Hugging Face cache {cache}"
    listed = ", ".join(f.relative for f in files) or "none"
    cli = "the Hugging Face CLI, `pip install huggingface_hub`"
    if file_part or files:
        example = file_part or (chosen or files)[0].relative
    else:
        example = "FILE.gguf"
        cli += f"; e.g. `hf download {_EXAMPLE_REPO} {_EXAMPLE_FILE}`"
    raise UserError(
        f"hf:{spec}: {missing}. GGUF files of {org}/{repo} there: {listed}. Download one with "
        f"`hf download {org}/{repo} {example}` ({cli}), or set HF_HUB_CACHE to the cache it is in.",
        field="model",
    )


@dataclass(frozen=True)
class _CachedFile:
    relative: str
    path: Path


def _snapshot_ggufs(folder: Path) -> list[_CachedFile]:
    """The GGUF files of one cached repository; `refs/main`'s revision wins a name clash."""
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return []
    main = folder / "refs" / "main"
    preferred = main.read_text().strip() if main.is_file() else ""
    revisions = sorted(
        (p for p in snapshots.iterdir() if p.is_dir()),
        key=lambda p: (p.name != preferred, -p.stat().st_mtime),
    )
    found: dict[str, _CachedFile] = {}
    for revision in revisions:
        for path in sorted(revision.rglob("*.gguf")):
            relative = path.relative_to(revision).as_posix()
            if relative not in found and path.is_file():  # a dangling link is a partial download
                found[relative] = _CachedFile(relative, path)
    return sorted(found.values(), key=lambda f: f.relative)


def _first_part(cached: _CachedFile) -> bool:
    """A model split into `-0000N-of-0000M` files is loaded from its first file."""
    name = Path(cached.relative).name
    return "-of-" not in name or "-00001-of-" in name


def find_models(configured: str | None = None) -> list[FoundModel]:
    """Every model Verity can find without downloading: the embedded one, the configured one,
    Ollama's store and the Hugging Face cache."""
    found = [_embedded()]
    if configured and configured != EMBEDDED_REF:
        try:
            found.append(FoundModel(configured, resolve_model_ref(configured).path, "configured"))
        except UserError:
            found.append(FoundModel(configured, Path(configured), "configured"))
    store = ollama_models_dir()
    for ref in _ollama_refs(store):
        parts, tag = _ollama_parts(ref.removeprefix("ollama:"))
        blob = _ollama_blob(store, store.joinpath("manifests", *parts, tag))
        if blob is not None:
            found.append(FoundModel(ref, blob, "ollama"))
    cache = hf_cache_dir()
    for folder in sorted(cache.glob("models--*--*")) if cache.is_dir() else []:
        _, org, repo = folder.name.split("--", 2)
        found.extend(
            FoundModel(f"hf:{org}/{repo}/{f.relative}", f.path, "hf")
            for f in _snapshot_ggufs(folder)
            if _first_part(f)
        )
    return found


def _embedded() -> FoundModel:
    """The embedded model: assembled in the cache, or else read from its first part (which
    holds the GGUF header), sized as all its parts together."""
    target = assembled_path(EMBEDDED_MODEL)
    if target.is_file():
        return FoundModel(EMBEDDED_REF, target, "embedded")
    try:
        parts = EMBEDDED_MODEL.part_files()
    except UserError:
        return FoundModel(EMBEDDED_REF, target, "embedded")
    size = sum(part.stat().st_size for part in parts)
    return FoundModel(EMBEDDED_REF, parts[0], "embedded", size_bytes=size)
