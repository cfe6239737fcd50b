"""The MCP configs users already have, in each client's documented format, start real servers:
Claude Desktop (and its own config file), FastMCP, VS Code and Cursor, SSE servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import (
    assert_no_leftovers,
    free_port,
    server_env,
    start_listening,
    stop,
)

TIME_SERVER = Path(sys.executable).with_name("mcp-server-time")


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def verity(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def listed(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    assert "Traceback" not in done.stderr
    return {server["name"]: server for server in json.loads(done.stdout)["servers"]}


def toolbox_entry(**extra: object) -> dict[str, object]:
    return {
        "command": sys.executable,
        "args": ["-m", "verity.servers.toolbox"],
        "env": server_env(),
        **extra,
    }


def time_entry(**extra: object) -> dict[str, object]:
    return {
        "command": str(TIME_SERVER),
        "args": ["--local-timezone", "UTC"],
        "env": server_env(),
        **extra,
    }


def test_a_fastmcp_config_starts_its_servers_and_warns_once_about_keys_verity_ignores(
    tmp_path: Path,
) -> None:
    # FastMCP's canonical MCPConfig: `transport` and a `description` per server
    config = tmp_path / "fastmcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "toolbox": toolbox_entry(
                        transport="stdio", description="Verity's built-in tools"
                    ),
                    "time": time_entry(transport="stdio", description="Time and time zones"),
                }
            }
        )
    )
    done = verity("mcp", "list", "--json", "--mcp-config", str(config))
    assert done.returncode == 0, done.stderr
    servers = listed(done)
    assert {name: s["state"] for name, s in servers.items()} == {
        "toolbox": "connected",
        "time": "connected",
    }
    assert "calculator" in servers["toolbox"]["tools"]  # type: ignore[operator]
    assert done.stderr == (
        f"verity: warning: {config}: ignoring 'description' (in 'toolbox', 'time'): Verity does "
        "not use it.\n"
    )


def test_a_vs_code_config_with_servers_type_and_env_file_starts_its_servers(
    tmp_path: Path,
) -> None:
    # the env file is all the faulty server has to find its module: its cwd is elsewhere
    (tmp_path / "workspace").mkdir()
    env_file = tmp_path / "workspace" / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in server_env().items()))
    config = tmp_path / "workspace" / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "inputs": [],
                "servers": {
                    "time": time_entry(type="stdio"),
                    "faulty": {
                        "type": "stdio",
                        "command": sys.executable,
                        "args": ["-m", "tests.fixtures.faulty_server"],
                        "cwd": str(tmp_path),
                        "envFile": "${env:VERITY_TEST_WORKSPACE}/.env",
                    },
                },
            }
        )
    )
    done = verity(
        "mcp",
        "list",
        "--json",
        "--mcp-config",
        str(config),
        env={"VERITY_TEST_WORKSPACE": str(tmp_path / "workspace")},
    )
    assert done.returncode == 0, done.stderr
    servers = listed(done)
    assert {name: s["state"] for name, s in servers.items()} == {
        "time": "connected",
        "faulty": "connected",
    }
    assert done.stderr == ""
    call = verity(
        "mcp",
        "call",
        "faulty",
        "echo",
        "--args",
        '{"text": "from the env file"}',
        "--mcp-config",
        str(config),
        env={"VERITY_TEST_WORKSPACE": str(tmp_path / "workspace")},
    )
    assert (call.returncode, call.stdout) == (0, "from the env file\n")


def test_a_cursor_config_whose_env_file_is_missing_skips_that_server_naming_the_file(
    tmp_path: Path,
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": time_entry(),
                    "faulty": {"command": sys.executable, "envFile": ".env"},
                }
            }
        )
    )
    done = verity("mcp", "list", "--json", "--mcp-config", str(config))
    assert done.returncode == 1
    assert list(listed(done)) == ["time"]
    assert done.stderr == (
        f"verity: warning: MCP server 'faulty': the env file '{tmp_path / '.env'}' does not "
        "exist. (skipped)\n"
    )


@pytest.fixture
def sse_port() -> Iterator[int]:
    port = free_port()
    process = start_listening("tests.fixtures.sse_server", str(port), port=port, timeout=60)
    try:
        yield port
    finally:
        stop(process)


def test_sse_servers_by_type_or_by_url_are_reached_through_the_sse_client(
    tmp_path: Path, sse_port: int
) -> None:
    url = f"http://127.0.0.1:{sse_port}/sse"
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "typed": {"type": "sse", "url": url},
                    "by url": {"url": url},
                }
            }
        )
    )
    done = verity("mcp", "list", "--json", "--mcp-config", str(config))
    assert done.returncode == 0, done.stderr
    servers = listed(done)
    for name in ("typed", "by url"):
        assert (servers[name]["transport"], servers[name]["state"]) == ("sse", "connected")
        assert servers[name]["tools"] == ["shout"]
    call = verity(
        "mcp",
        "call",
        "by url",
        "shout",
        "--args",
        '{"text": "old but served"}',
        "--mcp-config",
        str(config),
    )
    assert (call.returncode, call.stdout) == (0, "OLD BUT SERVED\n")


def test_mcp_config_claude_reads_claude_desktops_own_config_file(tmp_path: Path) -> None:
    claude = tmp_path / "config" / "Claude"
    claude.mkdir(parents=True)
    (claude / "claude_desktop_config.json").write_text(
        json.dumps(
            {
                "globalShortcut": "",
                "mcpServers": {"time": time_entry()},
            }
        )
    )
    done = verity(
        "mcp",
        "list",
        "--json",
        "--mcp-config",
        "claude",
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert done.returncode == 0, done.stderr
    assert listed(done)["time"]["state"] == "connected"


def test_servers_picks_servers_from_a_big_config_and_names_unknown_ones(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": time_entry(),
                    "toolbox": toolbox_entry(),
                    "never": {"command": "not-installed"},
                }
            }
        )
    )
    done = verity("mcp", "list", "--json", "--servers", "time", "--mcp-config", str(config))
    unknown = verity("mcp", "list", "--servers", "time,tiem", "--mcp-config", str(config))
    assert done.returncode == 0, done.stderr
    assert list(listed(done)) == ["time"]
    assert done.stderr == ""  # the broken entry was not chosen, so not reported
    assert (unknown.returncode, unknown.stderr) == (
        2,
        f"verity: error: --servers: no MCP server 'tiem' in {config}. Servers: time, toolbox, "
        "never.\n",
    )


def test_every_kind_of_server_gets_one_configurable_start_up_budget(tmp_path: Path) -> None:
    raw = str(PROJECT_ROOT / "tests" / "fixtures" / "raw_server.py")
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "silent": {
                        "command": sys.executable,
                        "args": [raw, "--silent-list"],
                        "env": server_env(),
                    },
                }
            }
        )
    )
    done = verity(
        "mcp",
        "list",
        "--mcp-startup-timeout",
        "2",
        "--mcp-config",
        str(config),
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert done.returncode == 1
    (warning,) = [line for line in done.stderr.splitlines() if "MCP server 'silent'" in line]
    # under load even the handshake may not fit in 2 s: either way, the budget given ran out
    assert "within 2 s" in warning
