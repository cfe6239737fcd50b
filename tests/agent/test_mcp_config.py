"""`mcpServers` files as users have them become server specs; a broken entry names its field."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from verity import MCPConfig, UserError, load_mcp_config, parse_mcp_config
from verity.tools.mcp import HTTPServer, StdioServer


def test_claude_desktop_file_with_preferences_and_both_transports_parses_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps({
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "time": {"command": sys.executable, "args": ["-m", "mcp_server_time"],
                     "env": {"TZ": "UTC"}, "cwd": str(tmp_path)},
            "docs": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer t"}},
            "off": {"command": "nothing-here", "disabled": True},
        },
    }))  # fmt: skip
    config = load_mcp_config(path)
    assert config == MCPConfig(
        servers=[
            StdioServer(name="time", command=sys.executable, args=("-m", "mcp_server_time"),
                        env={"TZ": "UTC"}, cwd=str(tmp_path)),
            HTTPServer(name="docs", url="http://127.0.0.1:8000/mcp",
                       headers={"Authorization": "Bearer t"}),
        ],
    )  # fmt: skip


def test_other_clients_keys_are_understood() -> None:
    config = parse_mcp_config({
        "mcpServers": {
            "t": {"type": "stdio", "command": sys.executable, "timeout": 30,
                  "alwaysAllow": ["get_current_time"], "includeTools": ["get_current_time"]},
            "h": {"type": "streamable-http", "url": "https://example.com/mcp",
                  "excludeTools": ["drop_all"], "autoApprove": ["search"]},
        }
    })  # fmt: skip
    assert config.errors == []
    stdio, http = config.servers
    assert isinstance(stdio, StdioServer) and stdio.timeout == 30.0
    assert stdio.include_tools == frozenset({"get_current_time"})
    assert isinstance(http, HTTPServer) and http.exclude_tools == frozenset({"drop_all"})
    assert config.approved == ["t__get_current_time", "h__search"]


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"command": sys.executable, "argz": []}, "mcpServers.bad.argz",
         "MCP server 'bad': unknown key 'argz'. Allowed here: alwaysAllow, args, autoApprove, "
         "command, cwd, disabled, env, excludeTools, includeTools, timeout, transport, type."),
        ({"args": ["x"]}, "mcpServers.bad.command",
         "MCP server 'bad': missing \"command\" (the program that starts the server)."),
        ({"command": "verity-no-such-server"}, "mcpServers.bad.command",
         "MCP server 'bad': command 'verity-no-such-server' not found. Install it or give its "
         "full path."),
        ({"url": "localhost:8000"}, "mcpServers.bad.url",
         "MCP server 'bad': \"url\" must be an http(s) URL such as http://127.0.0.1:8000/mcp, "
         "not 'localhost:8000'."),
        ({"type": "sse", "url": "http://127.0.0.1:1/sse"}, "mcpServers.bad.type",
         "MCP server 'bad': the SSE transport is not supported; use streamable HTTP."),
        ({"command": sys.executable, "env": {"N": 1}}, "mcpServers.bad.env",
         "MCP server 'bad': \"env\" must be an object of strings."),
        ({"command": sys.executable, "timeout": 60000}, "mcpServers.bad.timeout",
         "MCP server 'bad': give seconds between 0 and 3600, not 60000."),
    ],
)  # fmt: skip
def test_a_broken_entry_is_skipped_with_an_error_naming_the_server_and_field(
    entry: dict[str, object], field: str, message: str
) -> None:
    config = parse_mcp_config({"mcpServers": {"bad": entry, "good": {"command": sys.executable}}})
    assert [s.name for s in config.servers] == ["good"]
    (error,) = config.errors
    assert (error.field, error.message) == (field, message)


def test_server_names_that_could_collide_in_tool_names_are_rejected() -> None:
    config = parse_mcp_config({"mcpServers": {"a__b": {"command": sys.executable}}})
    assert config.servers == []
    assert [e.field for e in config.errors] == ["mcpServers.a__b"]


def test_a_file_that_is_not_json_or_has_no_servers_is_a_user_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"mcpServers": {')
    with pytest.raises(UserError) as not_json:
        load_mcp_config(broken)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(UserError) as no_servers:
        load_mcp_config(empty)
    with pytest.raises(UserError) as missing:
        load_mcp_config(tmp_path / "absent.json")
    assert not_json.value.message.startswith(f"MCP config {broken} is not valid JSON: ")
    assert no_servers.value.field == "mcpServers"
    assert missing.value.message == f"MCP config {tmp_path / 'absent.json'} does not exist."
    assert load_mcp_config(tmp_path / "absent.json", required=False) == MCPConfig()


def test_options_apply_to_every_server() -> None:
    config = parse_mcp_config(
        {"mcpServers": {"t": {"command": sys.executable}}}, connect_timeout=2.5
    )
    assert config.servers[0].connect_timeout == 2.5
