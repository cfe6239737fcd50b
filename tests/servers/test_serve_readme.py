"""The README's Claude Desktop snippet starts `verity serve`, exactly as written there."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers
from tests.fixtures.serve import serve_env

SNIPPET = re.compile(
    r"<!-- snippet-source (?P<path>\S+) -->\n```json\n(?P<code>.*?)```\n<!-- /snippet-source -->",
    re.S,
)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def claude_desktop_snippet() -> dict[str, Any]:
    readme = (PROJECT_ROOT / "README.md").read_text()
    (snippet,) = [s for s in SNIPPET.finditer(readme) if "mcpServers" in s["code"]]
    assert snippet["code"] == (PROJECT_ROOT / snippet["path"]).read_text()
    config: dict[str, Any] = json.loads(snippet["code"])
    return config


async def test_the_readme_claude_desktop_snippet_starts_verity_serve(tmp_path: Path) -> None:
    (entry,) = claude_desktop_snippet()["mcpServers"].values()
    # the command as Claude Desktop finds it: on PATH, here the environment this test runs in
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    command = shutil.which(entry["command"], path=search)
    if command is None:
        pytest.skip(f"the {entry['command']!r} command is not installed (pip install .)")
    params = StdioServerParameters(
        command=command,
        args=entry["args"],
        env=serve_env(tmp_path, VERITY_TRACE_DB=str(tmp_path / "traces.db")),
    )
    with anyio.fail_after(120):
        async with Client(params, mode="legacy") as client:
            server = client.server_info
            tools = [t.name for t in (await client.list_tools()).tools]
            runs = await client.call_tool("list_runs", {})
    assert server is not None and server.name == "verity"
    assert tools == ["run_agent", "list_runs", "get_run"]
    assert runs.structured_content == {"runs": []}
