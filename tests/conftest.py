"""Fixtures shared by the real-model tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import LlamaCppModel, ModelSettings, embedded_model_path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
