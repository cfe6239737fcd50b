"""Servers started ahead (`_prestart`): taken once, only by the exact same start, and light."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.stdio import get_default_environment

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers
from tests.tools.mcp.test_mcp import TIME_SERVER, call_once, counted_start
from verity.tools.mcp import StdioServer
from verity.tools.mcp._prestart import adopt, inherited_environment, prestart, server_environment


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def test_a_server_inherits_what_the_sdk_passes_on_and_no_shell_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "() { echo not passed on; }")
    monkeypatch.setenv("SHELL", "/bin/sh")
    assert "TERM" not in inherited_environment()
    assert inherited_environment() == get_default_environment()


async def test_a_connection_takes_the_process_started_ahead_and_the_server_starts_once(
    tmp_path: Path,
) -> None:
    server, starts = counted_start(tmp_path, "time", f"exec {TIME_SERVER}")
    assert prestart([server], io.StringIO()) == 1
    _, status = await call_once(server, "get_current_time", {"timezone": "UTC"})
    assert status.state == "connected"
    assert starts.read_text() == "started\n"


def test_only_the_same_command_arguments_environment_and_directory_take_a_process(
    tmp_path: Path,
) -> None:
    server = StdioServer(name="t", command="/bin/sh", args=("-c", "exec cat"), env={"A": "1"})
    assert prestart([server], io.StringIO()) == 1
    others = [
        dataclasses.replace(server, args=("-c", "exec cat ")),
        dataclasses.replace(server, env={"A": "2"}),
        dataclasses.replace(server, cwd=str(tmp_path)),
    ]
    for other in others:
        assert adopt(other, server_environment(other, inherited_environment())) is None
    env = server_environment(server, inherited_environment())
    taken = adopt(server, env)
    assert taken is not None and taken.process.poll() is None
    assert adopt(server, env) is None  # once
    taken.stdin.close()
    assert taken.process.wait(10) == 0  # cat ends at the end of its input
    taken.stdout.close()


def test_reading_a_config_and_starting_its_servers_imports_neither_the_sdk_nor_pydantic() -> None:
    code = (
        "import sys, verity.cli._early_servers, verity.mcp_config;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'pydantic', 'llama_cpp'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
