"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.processes import free_port, start_listening, stop


@pytest.fixture
def fake_server() -> Iterator[str]:
    """The fixed-answer OpenAI-compatible server (10 prompt and 5 completion tokens a call)."""
    port = free_port()
    process = start_listening("tests.fixtures.fake_openai", str(port), port=port)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)
