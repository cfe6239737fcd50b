"""`verity mcp ...` run as a user would, against real servers configured in an mcpServers file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, free_port, server_env

TIME_SERVER = Path(sys.executable).with_name("mcp-server-time")


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "time": {"command": str(TIME_SERVER), "args": ["--local-timezone", "UTC"],
                 "env": server_env()},
        "faulty": {"command": sys.executable, "args": ["-m", "tests.fixtures.faulty_server"],
                   "env": server_env(), "cwd": str(PROJECT_ROOT), "excludeTools": ["crash"]},
        "typo": {"comand": "mcp-server-time"},
    }}))  # fmt: skip
    return path


def verity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_mcp_list_shows_each_server_with_era_tools_and_health_and_reports_broken_entries(
    config: Path,
) -> None:
    done = verity("mcp", "list", "--json", "--mcp-config", str(config))
    assert done.returncode == 0, done.stderr
    servers = {s["name"]: s for s in json.loads(done.stdout)["servers"]}
    assert servers["time"] == {
        "name": "time", "transport": "stdio", "state": "connected",
        "protocol_version": "2026-07-28", "tools": ["get_current_time", "convert_time"],
        "restarts": 0, "error": None, "resources": [], "prompts": [],
    }  # fmt: skip
    assert servers["faulty"]["resources"] == ["notes://readme", "notes://{name}"]
    assert servers["faulty"]["prompts"] == ["review"]
    assert "crash" not in servers["faulty"]["tools"] and "echo" in servers["faulty"]["tools"]
    assert "typo" not in servers
    assert done.stderr == (
        "verity: warning: MCP server 'typo': unknown key 'comand'. Allowed here: alwaysAllow, "
        "args, autoApprove, command, cwd, disabled, env, excludeTools, includeTools, timeout, "
        "transport, type. (skipped)\n"
    )


def test_mcp_call_prints_the_result_and_exits_1_on_a_tool_error(config: Path) -> None:
    done = verity(
        "mcp", "call", "time", "convert_time", "--mcp-config", str(config), "--args",
        '{"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}',
    )  # fmt: skip
    failed = verity("mcp", "call", "faulty", "bad_output", "--mcp-config", str(config))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["target"]["datetime"].endswith("T21:00:00+09:00")
    assert (failed.returncode, failed.stdout) == (1, "Error executing tool bad_output\n")
    assert "Traceback" not in done.stderr + failed.stderr


def test_mcp_read_and_prompt_print_resources_and_prompts(config: Path) -> None:
    read = verity("mcp", "read", "faulty", "notes://readme", "--mcp-config", str(config))
    prompt = verity(
        "mcp", "prompt", "faulty", "review", "--args", '{"code": "x = 1"}',
        "--mcp-config", str(config),
    )  # fmt: skip
    assert (read.returncode, read.stdout) == (
        0, "[resource <notes://readme> (text/plain)]\nThe faulty server breaks on purpose.\n"
    )  # fmt: skip
    assert (prompt.returncode, prompt.stdout) == (0, "[user]\nPlease review:\nx = 1\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("call", "nope", "x"), "verity: error: No MCP server 'nope' in the config. Servers: "
                                "time, faulty.\n"),
        (("call", "faulty", "crash"), "verity: error: MCP server 'faulty' offers no tool "
                                      "'crash'.\n"),
        (("call", "time", "get_current_time", "--args", "[1]"),
         "verity: error: --args must be a JSON object such as {\"a\": 1}.\n"),
    ],
)  # fmt: skip
def test_mcp_call_mistakes_exit_2_with_one_line(
    config: Path, args: tuple[str, ...], message: str
) -> None:
    done = verity("mcp", *args, "--mcp-config", str(config))
    assert done.returncode == 2
    assert done.stderr.endswith(message)
    assert "Traceback" not in done.stderr


def test_mcp_list_with_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    done = verity("mcp", "list", "--mcp-config", str(tmp_path / "none.json"))
    assert (done.returncode, done.stderr) == (
        2, f"verity: error: MCP config {tmp_path / 'none.json'} does not exist.\n"
    )  # fmt: skip


def test_mcp_call_on_an_unreachable_server_exits_4_naming_the_url(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"web": {"url": f"http://127.0.0.1:{port}/mcp"}}}))
    done = verity("mcp", "call", "web", "echo", "--mcp-config", str(path))
    assert done.returncode == 4
    assert done.stderr.splitlines()[-1] == (
        "verity: error: MCP server 'web' is not available: ConnectError: All connection "
        "attempts failed"
    )
    assert f"MCP server 'web' is unreachable at url http://127.0.0.1:{port}/mcp" in done.stderr


@pytest.mark.slow
def test_run_with_mcp_config_answers_with_the_time_servers_tool(tmp_path: Path) -> None:
    config = tmp_path / "time.json"
    config.write_text(json.dumps({"mcpServers": {"time": {
        "command": str(TIME_SERVER), "args": ["--local-timezone", "UTC"], "env": server_env(),
    }}}))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "verity", "run", "--mcp-config", str(config), "--json", "--quiet",
         "--max-steps", "3",
         "What time is it in Tokyo when it is 12:00 in UTC? Use the convert_time tool."],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT),
             "VERITY_TRACE_DB": str(tmp_path / "traces.db")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "21:00" in json.loads(done.stdout)["answer"]
    assert "Traceback" not in done.stderr
