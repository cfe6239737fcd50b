"""Fixtures of the command-line tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import free_port, server_env, stop, wait_for_port


@pytest.fixture
def fake_server() -> Iterator[str]:
    """The fixed-answer OpenAI-compatible server (10 prompt and 5 completion tokens a call)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.fake_openai", str(port)],
        cwd=PROJECT_ROOT,
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)
