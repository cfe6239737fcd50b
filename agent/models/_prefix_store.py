"""Evaluated prompt prefixes on disk: one file per entry, shared by processes, bounded by bytes.

An entry is the llama.cpp state of one sequence after a prompt prefix (system prompt and tool
schemas), stored under the key that says which model and which exact tokens made it. The key
is written into the entry and compared on every load, so a file is never served for another
model or prefix, whatever its name. Writers write a temporary file and rename it, so readers
see a whole entry or none; the payload's sha256 in the header catches a file cut short by a
crash or a full disk, and such an entry is removed. When the entries together exceed the
bound, the least recently used go (a load touches its entry's modification time).

File layout: `MAGIC`, the header's length (8 bytes, little-endian), the header (JSON: the key,
the payload's size and sha256), the payload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PrefixKey", "PrefixStore"]

_log = logging.getLogger("verity.models")

MAGIC = b"VERITY-PREFIX\x00v1"
_LENGTH = struct.Struct("<Q")
_MAX_HEADER = 64 << 20
"""A header longer than this is not ours (a million tokens of JSON is ~8 MB)."""
_SUFFIX = ".kv"
_STALE_TEMP_S = 3600.0
"""A temporary file this old was left by a writer that died: eviction removes it."""


@dataclass(frozen=True)
class PrefixKey:
    """What makes a prefix's state reusable: the model file, the context's layout, the tokens."""

    model_sha256: str
    tokens: tuple[int, ...]
    context: Mapping[str, Any] = field(default_factory=dict)
    """What else the state's bytes depend on (llama.cpp version, KV cache types, ...)."""

    def header(self) -> dict[str, Any]:
        """The key as it is written into an entry."""
        return {
            "model_sha256": self.model_sha256,
            "context": dict(self.context),
            "tokens": list(self.tokens),
        }

    def file_name(self) -> str:
        """The entry's file name: a digest of the whole key."""
        text = json.dumps(self.header(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest() + _SUFFIX


class _Corrupt(Exception):
    """An entry that is not a whole, well-formed entry for the key asked for."""


class PrefixStore:
    """A directory of prefix states, at most `max_bytes` of them together.

    Never raises for the disk: an unreadable or unwritable directory is a miss (logged).
    """

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def path_for(self, key: PrefixKey) -> Path:
        """Where the entry for `key` lies (or would)."""
        return self.directory / key.file_name()

    def load(self, key: PrefixKey) -> bytearray | None:
        """The payload stored for `key`, or None. An entry that is corrupt, cut short or holds
        another key is removed."""
        path = self.path_for(key)
        try:
            with path.open("rb") as handle:
                payload = _read_entry(handle, key)
        except FileNotFoundError:
            return None
        except _Corrupt as exc:
            _log.warning("prefix cache: removed %s: %s", path, exc)
            _remove(path)
            return None
        except OSError as exc:
            _log.warning("prefix cache: cannot read %s: %s", path, exc)
            return None
        with contextlib.suppress(OSError):  # evicted meanwhile: what was read is whole anyway
            os.utime(path)  # most recently used
        return payload

    def save(self, key: PrefixKey, payload: bytes | bytearray | memoryview) -> bool:
        """Store `payload` for `key` (replacing any entry), then evict down to `max_bytes`.

        Returns whether it was stored: a payload larger than the whole bound is not.
        """
        view = memoryview(payload).cast("B")
        header = json.dumps(
            key.header()
            | {"payload_bytes": view.nbytes, "payload_sha256": hashlib.sha256(view).hexdigest()},
            separators=(",", ":"),
        ).encode()
        size = len(MAGIC) + _LENGTH.size + len(header) + view.nbytes
        if size > self.max_bytes:
            return False
        path = self.path_for(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(MAGIC + _LENGTH.pack(len(header)) + header)
                handle.write(view)
            # a rename is atomic: readers see the old entry, or none, or this whole one
            temporary.replace(path)
        except OSError as exc:
            _log.warning("prefix cache: cannot write %s: %s", path, exc)
            _remove(temporary)
            return False
        self.evict()
        return True

    def entries(self) -> list[Path]:
        """The entries, least recently used first."""
        found = []
        try:
            candidates = list(self.directory.glob("*" + _SUFFIX))
        except OSError:
            return []
        for path in candidates:
            try:
                found.append((path.stat().st_mtime_ns, path.name, path))
            except OSError:
                continue  # another process evicted it
        return [path for *_, path in sorted(found)]

    def evict(self) -> None:
        """Remove the least recently used entries until the rest fit `max_bytes`, and
        temporary files left by writers that died."""
        sizes = {}
        for path in self.entries():
            try:
                sizes[path] = path.stat().st_size
            except OSError:
                continue
        total = sum(sizes.values())
        for path, size in sizes.items():
            if total <= self.max_bytes:
                break
            _remove(path)
            total -= size
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        try:
            temporaries = list(self.directory.glob(".*.tmp"))
        except OSError:
            return
        for path in temporaries:
            try:
                stale = now - path.stat().st_mtime > _STALE_TEMP_S
            except OSError:
                continue
            if stale:
                _remove(path)


def _remove(path: Path) -> None:
    """Remove a file that may be gone already, or not ours to remove: best effort."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _read_entry(handle: Any, key: PrefixKey) -> bytearray:
    """The payload of the entry open in `handle`, checked against `key` and its own digest.

    Raises:
        _Corrupt: the entry is not a whole entry for `key`.
    """
    if handle.read(len(MAGIC)) != MAGIC:
        raise _Corrupt("not a prefix cache entry of this version")
    (length,) = _LENGTH.unpack(_exactly(handle, _LENGTH.size))
    if length > _MAX_HEADER:
        raise _Corrupt(f"a header of {length} bytes")
    try:
        header = json.loads(_exactly(handle, length))
        stored_key = {name: header[name] for name in ("model_sha256", "context", "tokens")}
        size, digest = int(header["payload_bytes"]), str(header["payload_sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _Corrupt(f"unreadable header ({exc})") from None
    if stored_key != key.header():
        raise _Corrupt("it holds another model's or another prefix's state")
    payload = bytearray(size)
    if handle.readinto(payload) != size or handle.read(1):
        raise _Corrupt("its payload is not the size its header says")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise _Corrupt("its payload does not match its sha256")
    return payload


def _exactly(handle: Any, size: int) -> bytes:
    data: bytes = handle.read(size)
    if len(data) != size:
        raise _Corrupt("it ends early")
    return data
