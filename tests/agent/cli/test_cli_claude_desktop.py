"""The literal Claude Desktop config (filesystem, memory and everything through `npx -y`, time
through `uvx`) run from a script: no terminal, `--trust` per server, a filesystem task."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, server_env

ENV_SERVER = """
import json, os
from mcp.server.mcpserver import MCPServer

server = MCPServer("env")

@server.tool()
def variables(names: list[str]) -> str:
    '''The values of environment variables of this server ("unset" for a missing one).'''
    return json.dumps({name: os.environ.get(name, "unset") for name in names})

server.run()
"""


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def verity(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in done.stderr
    return done


def test_a_server_gets_the_proxy_and_ca_bundle_settings_but_not_other_variables(
    tmp_path: Path,
) -> None:
    """npx and uvx fetch a server on its first start: behind a proxy, or with a CA bundle of
    its own, they need those settings, which the minimal inherited environment used to drop."""
    config = tmp_path / "mcp.json"
    entry = {"command": sys.executable, "args": ["-c", ENV_SERVER], "env": server_env()}
    config.write_text(json.dumps({"mcpServers": {"env": entry}}))
    env = {
        "HTTPS_PROXY": "http://127.0.0.1:3128",
        "SSL_CERT_FILE": str(tmp_path / "ca.pem"),
        "VERITY_TEST_SECRET": "not for servers",
    }
    arguments = json.dumps({"names": list(env)})
    done = verity(
        "mcp", "call", "env", "variables", "--args", arguments, "--mcp-config", str(config), env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "HTTPS_PROXY": "http://127.0.0.1:3128",
        "SSL_CERT_FILE": str(tmp_path / "ca.pem"),
        "VERITY_TEST_SECRET": "unset",
    }


def literal_claude_desktop_config(served: Path) -> dict[str, object]:
    """The four servers exactly as their READMEs give them for claude_desktop_config.json."""
    return {
        "mcpServers": {
            "filesystem": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", str(served)],
            },
            "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
            "everything": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-everything"],
            },
            "time": {"command": "uvx", "args": ["mcp-server-time"]},
        }
    }


@pytest.mark.slow
def test_the_literal_four_server_claude_desktop_config_answers_a_filesystem_task_from_a_script(
    tmp_path: Path,
) -> None:
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed (apt-get install nodejs npm): the config starts npx")
    # uvx comes with the test extra's `uv`, beside this Python; the servers it starts live in
    # uv's own environments, never in Verity's venv
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "uvx").exists() or shutil.which("uvx"), "pip install uv (the test extra)"
    served = tmp_path / "files"
    served.mkdir()
    (served / "notes.txt").write_text("The launch code is 7319.\n")
    (served / "shopping.md").write_text("- apples\n- bread\n")
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps(literal_claude_desktop_config(served), indent=2))
    trust = [
        word
        for name in ("filesystem", "memory", "everything", "time")
        for word in ("--trust", name)
    ]
    done = verity(
        "run",
        "--json",
        "--mcp-config",
        str(config),
        *trust,
        f"What is the content of the file notes.txt in {served}?",
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "VERITY_TRACE_DB": str(tmp_path / "traces.db"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no approvals stored by a user
        },
        timeout=1200,
    )
    assert "could not be started" not in done.stderr  # all four servers, time through uvx
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "answered"
    assert "7319" in result["answer"]
    # trusted servers' read-only tools ran; what may change things was withheld, said once
    assert "They may change things: allow them with --allow" in done.stderr
