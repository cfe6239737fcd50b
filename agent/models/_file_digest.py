"""A model file's sha256, computed once per file version and remembered by (path, size, mtime)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from verity.models.embedded import NAMED_MODELS, assembled_path

__all__ = ["model_sha256"]

_log = logging.getLogger("verity.models")


def model_sha256(path: Path, *, memo_dir: Path) -> str:
    """The sha256 of the file at `path`.

    A model Verity assembled itself (the embedded ones) was checked against its known digest
    when it was assembled. Any other file is hashed once; the digest is kept in `memo_dir`
    under the file's path, size and modification time, and hashed again when one changes.

    Raises:
        OSError: the file cannot be read.
    """
    resolved = path.resolve()
    for model in NAMED_MODELS.values():
        if resolved == assembled_path(model).resolve():
            return model.sha256
    stat = resolved.stat()
    version = {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    memo = memo_dir / (hashlib.sha256(str(resolved).encode()).hexdigest()[:32] + ".json")
    try:
        remembered = json.loads(memo.read_text())
        if {k: remembered.get(k) for k in version} == version:
            return str(remembered["sha256"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # not remembered yet, or unreadable: hash it again
    with resolved.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    try:
        memo_dir.mkdir(parents=True, exist_ok=True)
        temporary = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(version | {"sha256": digest}))
        temporary.replace(memo)
    except OSError as exc:
        _log.warning("prefix cache: cannot remember the digest of %s: %s", path, exc)
    return digest
