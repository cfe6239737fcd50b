"""Test helper: a copy of a GGUF file with some string metadata replaced (e.g. its chat template).

The tensor data is copied unchanged; tensor offsets count from the start of the (aligned) data
section, so only the header is rewritten and re-padded to the file's alignment.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import BinaryIO

_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _string(handle: BinaryIO) -> bytes:
    (length,) = struct.unpack("<Q", handle.read(8))
    return handle.read(length)


def _pack_string(value: bytes) -> bytes:
    return struct.pack("<Q", len(value)) + value


def _skip_value(handle: BinaryIO, kind: int) -> None:
    if kind in _SIZES:
        handle.seek(_SIZES[kind], 1)
    elif kind == _STRING:
        _string(handle)
    else:
        item_kind, count = struct.unpack("<IQ", handle.read(12))
        if item_kind in _SIZES:
            handle.seek(_SIZES[item_kind] * count, 1)
        else:
            for _ in range(count):
                _skip_value(handle, item_kind)


def copy_with_strings(source: Path, target: Path, changes: dict[str, str]) -> None:
    """Copy `source` to `target`, replacing the string metadata values named in `changes`."""
    with source.open("rb") as handle:
        magic, version, tensor_count, kv_count = struct.unpack("<4sIQQ", handle.read(24))
        header = bytearray(struct.pack("<4sIQQ", magic, version, tensor_count, kv_count))
        alignment = 32
        for _ in range(kv_count):
            start = handle.tell()
            key = _string(handle)
            (kind,) = struct.unpack("<I", handle.read(4))
            value_start = handle.tell()
            _skip_value(handle, kind)
            end = handle.tell()
            name = key.decode()
            if name == "general.alignment":
                handle.seek(value_start)
                (alignment,) = struct.unpack("<I", handle.read(4))
                handle.seek(end)
            if name in changes:
                assert kind == _STRING, f"{name} is not a string"
                header += _pack_string(key) + struct.pack("<I", kind)
                header += _pack_string(changes[name].encode())
            else:
                handle.seek(start)
                header += handle.read(end - start)
        for _ in range(tensor_count):
            start = handle.tell()
            _string(handle)
            (dims,) = struct.unpack("<I", handle.read(4))
            handle.seek(8 * dims + 4 + 8, 1)
            end = handle.tell()
            handle.seek(start)
            header += handle.read(end - start)
        data_start = -(-handle.tell() // alignment) * alignment
        header += b"\0" * (-len(header) % alignment)
        handle.seek(data_start)
        with target.open("wb") as out:
            out.write(header)
            shutil.copyfileobj(handle, out, 1 << 22)
