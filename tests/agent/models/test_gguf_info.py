"""Reading a GGUF header without loading the model, and never past the file's end."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from verity import UserError
from verity.models.gguf_info import GGUFInfo, read_gguf_info


def test_the_embedded_model_s_header_gives_its_facts(embedded_path: Path) -> None:
    assert read_gguf_info(embedded_path) == GGUFInfo(
        path=embedded_path,
        size_bytes=491400064,
        architecture="qwen2",
        name="Qwen2.5 Coder 0.5B Instruct AWQ",
        quantization="Q4_K_M",
        context_length=32768,
        layers=24,
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"PK\x03\x04 a zip file", "it does not start with 'GGUF'"),
        (b"GGUF" + struct.pack("<IQQ", 7, 0, 0), "GGUF version 7, this reader knows 2 and 3"),
        # a key claiming 2**60 bytes: refused before anything is allocated
        (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**60) + b"general.name", ""),
        (
            b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 4) + b"key!" + struct.pack("<I", 99),
            "unknown value type 99",
        ),
    ],
    ids=["not gguf", "version", "huge length", "unknown type"],
)
def test_a_bad_header_is_a_user_error_naming_the_file(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(UserError) as raised:
        read_gguf_info(path)
    detail = f" ({problem})" if problem else ""
    assert raised.value.message == (
        f"'{path}' is not a readable GGUF file: its header is cut short or corrupt{detail}."
    )


def test_a_header_cut_short_is_a_user_error(tmp_path: Path, embedded_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    with embedded_path.open("rb") as source:
        path.write_bytes(source.read(600))
    with pytest.raises(UserError, match="header is cut short or corrupt"):
        read_gguf_info(path)
