"""What `verity serve` prints while llama.cpp loads the model: nothing, unless -v asks for it.

llama.cpp logs some 28 lines as it builds a context. Its levels are ggml's (DEBUG 1, INFO 2,
WARN 3, ERROR 4), which a table one off once made WARNING lines of in the server's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.fixtures.processes import assert_no_leftovers, free_port, stop
from tests.fixtures.serve import start_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


async def serve_one_run(home: Path, port: int, *options: str) -> list[str]:
    """Start the server, run one step of a task (the model loads), stop: its stderr lines."""
    process = start_serve(port, *options, home=home)
    try:
        with anyio.fail_after(300):
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                ran = await client.call_tool("run_agent", {"task": "Say hi.", "max_steps": 1})
    finally:
        stop(process)
    assert ran.is_error is False
    return (home / "serve.log").read_text().splitlines()


async def test_llama_cpp_loading_the_model_prints_nothing_by_default(tmp_path: Path) -> None:
    port = free_port()
    lines = await serve_one_run(tmp_path, port)
    assert lines == [f"verity: serving MCP on http://127.0.0.1:{port}/mcp"]


async def test_llama_cpp_log_is_shown_with_v_as_information(tmp_path: Path) -> None:
    lines = await serve_one_run(tmp_path, free_port(), "-v")
    native = [line for line in lines if line.startswith("llama.cpp: ")]
    assert "llama.cpp: llama_context: constructing llama_context" in native
    assert len(native) == len(lines) - 1  # besides them only the "serving" line
    assert not any("WARNING" in line or "ERROR" in line for line in lines)
