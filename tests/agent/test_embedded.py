"""Assembling the embedded default model from its PyPI parts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from verity import UserError
from verity.models.embedded import EMBEDDED_MODEL, EmbeddedModel, embedded_model_path


def test_a_missing_part_package_says_how_to_install_it(tmp_path: Path) -> None:
    model = EmbeddedModel(
        name="Tiny", package_prefix="verity-test-absent-part", parts=2, version="1.0",
        sha256="0" * 64,
    )  # fmt: skip
    with pytest.raises(UserError) as caught:
        embedded_model_path(model, cache_dir=tmp_path)
    assert caught.value.message == (
        "The embedded model Tiny is incomplete: package verity-test-absent-part1 is not "
        "installed. Install it with `pip install verity-test-absent-part1==1.0` (or reinstall "
        "Verity), or choose another GGUF file with --model PATH or the VERITY_MODEL variable."
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_checksum_mismatch_is_reported_and_leaves_no_file(tmp_path: Path) -> None:
    wrong = EmbeddedModel(
        name=EMBEDDED_MODEL.name, package_prefix=EMBEDDED_MODEL.package_prefix,
        parts=EMBEDDED_MODEL.parts, version=EMBEDDED_MODEL.version, sha256="0" * 64,
    )  # fmt: skip
    with pytest.raises(UserError, match="a part is corrupt or of another version"):
        embedded_model_path(wrong, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_assembled_model_matches_the_published_checksum(embedded_path: Path) -> None:
    digest = hashlib.sha256()
    with embedded_path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    assert digest.hexdigest() == EMBEDDED_MODEL.sha256
    assert embedded_model_path() == embedded_path  # reused, not rebuilt
