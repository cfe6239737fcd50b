"""What a GGUF file holds, read from its header alone: architecture, quantization, size.

Reads the key/value metadata at the start of the file (format v2 and v3) without loading the
model, so listing many large models is cheap. Every length read from the file is checked
against the file's size before it is used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from verity.errors import UserError

__all__ = ["GGUFInfo", "read_gguf_info"]

# llama.h `enum llama_ftype`: what `general.file_type` says the weights are quantized to
_FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}

# GGUF value types: struct format of the fixed-size ones
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING = 8
_ARRAY = 9
_WANTED_SUFFIXES = (".context_length", ".block_count")


@dataclass(frozen=True)
class GGUFInfo:
    """The facts about a GGUF model a user picks it by."""

    path: Path
    size_bytes: int
    """The file's size (of the first part, for a model split into several files)."""
    architecture: str | None
    """`general.architecture`, e.g. `qwen2`, `llama`."""
    name: str | None
    """`general.name`, e.g. `Qwen2.5 Coder 0.5B Instruct`."""
    quantization: str | None
    """From `general.file_type`, e.g. `Q4_K_M`; None when the file does not say."""
    context_length: int | None
    """The context the model was trained for (`<arch>.context_length`)."""
    layers: int | None
    """`<arch>.block_count`: what `--n-gpu-layers` counts."""


class _Reader:
    """Little-endian reads that never run past the end of the file."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self._size = size

    def read(self, count: int) -> bytes:
        if count < 0 or self._handle.tell() + count > self._size:
            raise EOFError
        data = self._handle.read(count)
        if len(data) != count:
            raise EOFError
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.read(self.unpack("<Q")).decode("utf-8", errors="replace")

    def skip(self, count: int) -> None:
        if count < 0 or self._handle.tell() + count > self._size:
            raise EOFError
        self._handle.seek(count, 1)

    def value(self, kind: int) -> Any:
        """Read a value of GGUF type `kind`; arrays are skipped (None)."""
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            if item_kind in _SCALARS:
                self.skip(count * struct.calcsize(_SCALARS[item_kind]))
            else:
                for _ in range(count):
                    self.value(item_kind)
            return None
        raise ValueError(f"unknown value type {kind}")


def read_gguf_info(path: Path) -> GGUFInfo:
    """Read the header of the GGUF file at `path`.

    Raises:
        UserError: the file is missing, not a GGUF file, or its header is cut short or corrupt.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            metadata = _read_metadata(_Reader(handle, size))
    except OSError as exc:
        raise UserError(f"Cannot read {str(path)!r}: {exc.strerror}.", field="model") from None
    except (EOFError, ValueError, struct.error) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise UserError(
            f"{str(path)!r} is not a readable GGUF file: its header is cut short or corrupt"
            f"{detail}.",
            field="model",
        ) from None
    architecture = metadata.get("general.architecture")
    file_type = metadata.get("general.file_type")
    return GGUFInfo(
        path=path,
        size_bytes=size,
        architecture=architecture,
        name=metadata.get("general.name"),
        quantization=_FILE_TYPES.get(file_type) if isinstance(file_type, int) else None,
        context_length=metadata.get(f"{architecture}.context_length"),
        layers=metadata.get(f"{architecture}.block_count"),
    )


def _read_metadata(reader: _Reader) -> dict[str, Any]:
    if reader.read(4) != b"GGUF":
        raise ValueError("it does not start with 'GGUF'")
    version = reader.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version}, this reader knows 2 and 3")
    reader.unpack("<Q")  # tensor count
    count = reader.unpack("<Q")
    metadata: dict[str, Any] = {}
    for _ in range(count):
        key = reader.string()
        metadata[key] = reader.value(reader.unpack("<I"))
        if _complete(metadata):
            break  # the rest is mostly the tokenizer's vocabulary
    return metadata


def _complete(metadata: dict[str, Any]) -> bool:
    architecture = metadata.get("general.architecture")
    if architecture is None or "general.file_type" not in metadata:
        return False
    return all(f"{architecture}{suffix}" in metadata for suffix in _WANTED_SUFFIXES)
