"""`verity mcp import`: the servers of Claude Desktop, Cursor and VS Code config files, each in
its client's documented format, copied into Verity's own config, from which they start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, server_env

TIME_SERVER = Path(sys.executable).with_name("mcp-server-time")


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A fresh home and config directory: Claude Desktop's and Verity's files live there."""
    (tmp_path / "home").mkdir()
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "VERITY_MCP_CONFIG": "",
    }


def verity(
    *args: str, env: dict[str, str], cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in done.stderr
    return done


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def time_entry() -> dict[str, Any]:
    return {"command": str(TIME_SERVER), "args": ["--local-timezone", "UTC"], "env": server_env()}


def test_claude_desktops_servers_are_imported_into_verity_s_config_and_start_from_it(
    tmp_path: Path, home: dict[str, str]
) -> None:
    # Claude Desktop's documented file: mcpServers beside its own preferences
    write(
        tmp_path / "config" / "Claude" / "claude_desktop_config.json",
        {"globalShortcut": "Ctrl+Space", "mcpServers": {"time": time_entry()}},
    )
    done = verity("mcp", "import", "claude", env=home)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "config" / "verity" / "mcp.json"
    source = tmp_path / "config" / "Claude" / "claude_desktop_config.json"
    assert done.stdout.splitlines() == [
        f"added time (from {source})",
        f"imported 1 server into {target}",
    ]
    assert json.loads(target.read_text()) == {"mcpServers": {"time": time_entry()}}
    listed = verity("mcp", "list", "--json", env=home)  # the default config: the imported one
    assert listed.returncode == 0, listed.stderr
    (server,) = json.loads(listed.stdout)["servers"]
    assert (server["name"], server["state"]) == ("time", "connected")
    assert "get_current_time" in server["tools"]


def test_cursors_global_config_merges_by_name_keeping_what_verity_s_config_has(
    tmp_path: Path, home: dict[str, str]
) -> None:
    mine = {"command": "my-time-server", "args": []}
    target = write(
        tmp_path / "config" / "verity" / "mcp.json",
        {"mcpServers": {"time": mine}, "note": "kept"},
    )
    # Cursor's documented ~/.cursor/mcp.json: mcpServers, stdio and remote entries, envFile
    write(
        tmp_path / "home" / ".cursor" / "mcp.json",
        {
            "mcpServers": {
                "time": time_entry(),
                "docs": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "${env:DOCS_KEY}"}},
                "toolbox": {
                    "type": "stdio",
                    "command": sys.executable,
                    "args": ["-m", "verity.servers.toolbox"],
                    "envFile": str(tmp_path / "home" / ".env"),
                },
            }
        },
    )
    (tmp_path / "home" / ".env").write_text("TOOLBOX_MODE=test\n")
    done = verity("mcp", "import", "cursor", env=home)
    assert done.returncode == 0, done.stderr
    source = tmp_path / "home" / ".cursor" / "mcp.json"
    assert done.stdout.splitlines() == [
        f"added docs (from {source})",
        f"added toolbox (from {source})",
        f"skipped time: {target} already has it (a different entry)",
        f"imported 2 servers into {target}",
    ]
    written = json.loads(target.read_text())
    assert written["note"] == "kept"
    assert written["mcpServers"]["time"] == mine
    assert list(written["mcpServers"]) == ["time", "docs", "toolbox"]
    # an entry Verity cannot start as written is imported, and the fix is named
    assert "MCP server 'docs': environment variable DOCS_KEY is not set" in done.stderr
    assert f"Fix it in {target}." in done.stderr
    again = verity("mcp", "import", "cursor", env=home)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"nothing to import into {target}"
    assert f"skipped docs: {target} already has it (the same entry)" in again.stdout


def test_a_vs_code_workspace_config_is_imported_with_its_workspace_folder_filled_in(
    tmp_path: Path, home: dict[str, str]
) -> None:
    workspace = tmp_path / "project"
    # VS Code's documented .vscode/mcp.json: "servers", "inputs", ${workspaceFolder}
    write(
        workspace / ".vscode" / "mcp.json",
        {
            "inputs": [{"type": "promptString", "id": "key", "description": "Key"}],
            "servers": {
                "toolbox": {
                    "type": "stdio",
                    "command": sys.executable,
                    "args": ["-m", "verity.servers.toolbox"],
                    "cwd": "${workspaceFolder}",
                    "env": {**server_env(), "PYTHONPATH": str(PROJECT_ROOT)},
                }
            },
        },
    )
    target = tmp_path / "verity.json"
    options = ["--mcp-config", str(target)]
    dry = verity("mcp", "import", "vscode", "--dry-run", *options, env=home, cwd=workspace)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1] == (
        f"dry run: 1 server would be imported into {target}; nothing written"
    )
    assert not target.exists()
    done = verity("mcp", "import", "vscode", *options, env=home, cwd=workspace)
    assert done.returncode == 0, done.stderr
    entry = json.loads(target.read_text())["mcpServers"]["toolbox"]
    assert entry["cwd"] == str(workspace.resolve())
    listed = verity("mcp", "list", "--json", "--mcp-config", str(target), env=home)
    assert listed.returncode == 0, listed.stderr
    (server,) = json.loads(listed.stdout)["servers"]
    assert server["state"] == "connected"


def test_a_source_that_is_not_there_or_not_a_config_is_a_clear_error(
    tmp_path: Path, home: dict[str, str]
) -> None:
    missing = verity("mcp", "import", "cursor", env=home)
    assert missing.returncode == 2
    assert missing.stderr == (
        f"verity: error: cursor: there is no {tmp_path / 'home' / '.cursor' / 'mcp.json'}; give "
        "the path of the config file to import.\n"
    )
    settings = write(tmp_path / "settings.json", {"editor.fontSize": 14})
    wrong = verity("mcp", "import", str(settings), env=home)
    assert wrong.returncode == 2
    assert 'expected an object with "mcpServers"' in wrong.stderr
    assert not (tmp_path / "config" / "verity" / "mcp.json").exists()
