"""`mcpServers` files as users have them become server specs; a broken entry names its field."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from verity import MCPConfig, UserError, load_mcp_config, parse_mcp_config
from verity.tools.mcp import HTTPServer, StdioServer


def test_claude_desktop_file_with_preferences_and_both_transports_parses_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(
        json.dumps(
            {
                "globalShortcut": "Ctrl+Space",
                "mcpServers": {
                    "time": {
                        "command": sys.executable,
                        "args": ["-m", "mcp_server_time"],
                        "env": {"TZ": "UTC"},
                        "cwd": str(tmp_path),
                    },
                    "docs": {
                        "url": "http://127.0.0.1:8000/mcp",
                        "headers": {"Authorization": "Bearer t"},
                    },
                    "off": {"command": "nothing-here", "disabled": True},
                },
            }
        )
    )
    config = load_mcp_config(path)
    assert config == MCPConfig(
        servers=[
            StdioServer(
                name="time",
                command=sys.executable,
                args=("-m", "mcp_server_time"),
                env={"TZ": "UTC"},
                cwd=str(tmp_path),
            ),
            HTTPServer(
                name="docs", url="http://127.0.0.1:8000/mcp", headers={"Authorization": "Bearer t"}
            ),
        ],
    )


def test_other_clients_keys_are_understood() -> None:
    config = parse_mcp_config(
        {
            "mcpServers": {
                "t": {
                    "type": "stdio",
                    "command": sys.executable,
                    "timeout": 30,
                    "alwaysAllow": ["get_current_time"],
                    "includeTools": ["get_current_time"],
                },
                "h": {
                    "type": "streamable-http",
                    "url": "https://example.com/mcp",
                    "excludeTools": ["drop_all"],
                    "autoApprove": ["search"],
                },
            }
        }
    )
    assert config.errors == []
    stdio, http = config.servers
    assert isinstance(stdio, StdioServer) and stdio.timeout == 30.0
    assert stdio.include_tools == frozenset({"get_current_time"})
    assert isinstance(http, HTTPServer) and http.exclude_tools == frozenset({"drop_all"})
    assert config.approved == ["t__get_current_time", "h__search"]


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        (
            {"args": ["x"]},
            "mcpServers.bad.command",
            "MCP server 'bad': missing \"command\" (the program that starts the server).",
        ),
        (
            {"command": "verity-no-such-server"},
            "mcpServers.bad.command",
            "MCP server 'bad': command 'verity-no-such-server' not found. Install it or give its "
            "full path.",
        ),
        (
            {"url": "localhost:8000"},
            "mcpServers.bad.url",
            "MCP server 'bad': \"url\" must be an http(s) URL such as http://127.0.0.1:8000/mcp, "
            "not 'localhost:8000'.",
        ),
        (
            {"type": "websocket", "url": "ws://127.0.0.1:1/"},
            "mcpServers.bad.type",
            'MCP server \'bad\': unknown type \'websocket\'; use "stdio", "http" or "sse".',
        ),
        (
            {"command": sys.executable, "envFile": 7},
            "mcpServers.bad.envFile",
            "MCP server 'bad': \"envFile\" must be the path of a .env file.",
        ),
        (
            {"command": sys.executable, "env": {"KEY": "${input:api-key}"}},
            "mcpServers.bad.env.KEY",
            "MCP server 'bad': ${input:api-key} is a VS Code prompt Verity cannot show; put the "
            "value in an environment variable and write ${env:NAME}.",
        ),
        (
            {"command": sys.executable, "env": {"N": 1}},
            "mcpServers.bad.env",
            "MCP server 'bad': \"env\" must be an object of strings.",
        ),
        (
            {"command": sys.executable, "timeout": 60000},
            "mcpServers.bad.timeout",
            "MCP server 'bad': give seconds between 0 and 3600, not 60000.",
        ),
        (
            {"command": sys.executable, "timeout": True},
            "mcpServers.bad.timeout",
            "MCP server 'bad': give seconds between 0 and 3600, not True.",
        ),
        (
            {"command": sys.executable, "startupTimeout": "60"},
            "mcpServers.bad.startupTimeout",
            "MCP server 'bad': give seconds between 0 and 3600, not '60'.",
        ),
        (
            {"command": sys.executable, "disabled": "true"},
            "mcpServers.bad.disabled",
            "MCP server 'bad': \"disabled\" must be true or false (no quotes), not 'true'.",
        ),
        (
            {"command": sys.executable, "trust": "yes"},
            "mcpServers.bad.trust",
            "MCP server 'bad': \"trust\" must be true or false (no quotes), not 'yes'.",
        ),
        (
            {"command": sys.executable, "args": ["${VERITY_TEST_UNSET_VARIABLE}"]},
            "mcpServers.bad.args",
            "MCP server 'bad': environment variable VERITY_TEST_UNSET_VARIABLE is not set. Set it, "
            "or give a default: ${VERITY_TEST_UNSET_VARIABLE:-default}.",
        ),
    ],
)
def test_a_broken_entry_is_skipped_with_an_error_naming_the_server_and_field(
    entry: dict[str, object], field: str, message: str
) -> None:
    config = parse_mcp_config({"mcpServers": {"bad": entry, "good": {"command": sys.executable}}})
    assert [s.name for s in config.servers] == ["good"]
    (error,) = config.errors
    assert (error.field, error.message) == (field, message)


def test_server_names_with_dots_spaces_or_double_underscores_are_accepted() -> None:
    entry = {"command": sys.executable, "alwaysAllow": ["read"]}
    config = parse_mcp_config(
        {
            "mcpServers": {
                "github.com": entry,
                "my server": entry,
                "a__b": entry,
                "": entry,
            }
        }
    )
    assert [s.name for s in config.servers] == ["github.com", "my server", "a__b"]
    assert [e.field for e in config.errors] == ["mcpServers"]
    assert config.approved == ["github_com__read", "my_server__read", "a_b__read"]


def test_trust_and_startup_timeout_are_read_and_every_server_gets_the_long_default() -> None:
    config = parse_mcp_config(
        {
            "mcpServers": {
                "mem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
                "local": {"command": sys.executable, "trust": True, "startupTimeout": 45},
                "script": {"command": sys.executable, "args": ["server.py"]},
            }
        }
    )
    assert config.errors == []
    mem, local, script = config.servers
    assert (mem.trusted, mem.startup_timeout) == (False, 120.0)
    assert (local.trusted, local.startup_timeout) == (True, 45.0)
    assert script.startup_timeout == 120.0


def test_variables_expand_in_command_args_env_url_and_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VERITY_TEST_TOKEN_VALUE", "s3cret")
    monkeypatch.setenv("VERITY_TEST_EMPTY", "")
    monkeypatch.delenv("VERITY_TEST_UNSET_VARIABLE", raising=False)
    python_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("VERITY_TEST_PYTHON_DIR", python_dir)
    config = parse_mcp_config(
        {
            "mcpServers": {
                "s": {
                    "command": "${VERITY_TEST_PYTHON_DIR}/" + Path(sys.executable).name,
                    "args": [
                        "--token=${VERITY_TEST_TOKEN_VALUE}",
                        "${VERITY_TEST_UNSET_VARIABLE:-x}",
                        "${VERITY_TEST_EMPTY:-fallback}",
                        "$HOME stays",
                        "${VERITY_TEST_EMPTY}",
                    ],
                    "env": {"TOKEN": "${VERITY_TEST_TOKEN_VALUE}"},
                },
                "h": {
                    "url": "http://127.0.0.1:${VERITY_TEST_UNSET_VARIABLE:-8000}/mcp",
                    "headers": {"Authorization": "Bearer ${VERITY_TEST_TOKEN_VALUE}"},
                },
            }
        }
    )
    assert config.errors == []
    stdio, http = config.servers
    assert isinstance(stdio, StdioServer) and isinstance(http, HTTPServer)
    assert stdio.command == f"{python_dir}/{Path(sys.executable).name}"
    assert stdio.args == ("--token=s3cret", "x", "fallback", "$HOME stays", "")
    assert stdio.env == {"TOKEN": "s3cret"}
    assert (http.url, http.headers) == (
        "http://127.0.0.1:8000/mcp",
        {"Authorization": "Bearer s3cret"},
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}',
            "'a' is given twice in one object (another client would silently take the last); "
            "keep one.",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "is nested too deeply to be an mcpServers file."),
        (b'{"mcpServers": {"a": "\xff"}}', "it is not UTF-8 text (byte 22)."),
    ],
)
def test_a_broken_file_is_one_user_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "mcp.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        load_mcp_config(path)
    assert caught.value.message.endswith(message), caught.value.message
    assert str(path) in caught.value.message


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"mcpServers": {"t": {"command": sys.executable}}}).encode()
    )
    assert [s.name for s in load_mcp_config(path).servers] == ["t"]


def test_a_device_or_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        with pytest.raises(UserError) as caught:
            load_mcp_config(path)  # reading either would never end
        assert caught.value.message == f"Cannot read MCP config {path}: it is not a regular file."


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


def test_unknown_keys_are_ignored_with_one_warning_per_key_naming_the_servers() -> None:
    config = parse_mcp_config(
        {
            "mcpServers": {
                "a": {"command": sys.executable, "description": "FastMCP's", "argz": []},
                "b": {"command": sys.executable, "description": "also"},
            }
        },
        source="fastmcp.json",
    )
    assert [s.name for s in config.servers] == ["a", "b"] and config.errors == []
    assert config.ignored == [
        "fastmcp.json: ignoring 'description' (in 'a', 'b'): Verity does not use it.",
        "fastmcp.json: ignoring 'argz' (in 'a'): Verity does not use it.",
    ]


def test_vs_code_servers_layout_sse_by_type_or_url_and_env_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VERITY_TEST_HOST", "127.0.0.1:9")
    config = parse_mcp_config(
        {
            "inputs": [],
            "servers": {
                "typed": {"type": "sse", "url": "http://${env:VERITY_TEST_HOST}/events"},
                "by url": {"url": "http://127.0.0.1:9/sse/"},
                "stream": {"type": "http", "url": "http://127.0.0.1:9/sse"},
                "local": {"type": "stdio", "command": sys.executable},
            },
        }
    )
    typed, by_url, stream, local = config.servers
    assert isinstance(typed, HTTPServer) and (typed.url, typed.sse) == (
        "http://127.0.0.1:9/events",
        True,
    )
    assert isinstance(by_url, HTTPServer) and by_url.sse is True
    assert isinstance(stream, HTTPServer) and stream.sse is False  # a type given wins
    assert isinstance(local, StdioServer)


def test_an_env_file_is_read_relative_to_the_config_and_env_wins_over_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# a comment\nA=from file\nB='quoted value'\nexport C=3\n")
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "s": {"command": sys.executable, "envFile": ".env", "env": {"A": "from env"}},
                }
            }
        )
    )
    (server,) = load_mcp_config(path).servers
    assert isinstance(server, StdioServer)
    assert dict(server.env) == {"A": "from env", "B": "quoted value", "C": "3"}


def test_trust_and_servers_pick_and_trust_servers_by_name() -> None:
    data = {
        "mcpServers": {
            "a": {"command": sys.executable},
            "b": {"command": sys.executable},
            "broken": {"args": []},
        }
    }
    config = parse_mcp_config(data, trust=["b"], only=["a", "b"])
    assert [(s.name, s.trusted) for s in config.servers] == [("a", False), ("b", True)]
    assert config.errors == []  # the broken entry was not picked
    with pytest.raises(UserError) as unknown:
        parse_mcp_config(data, only=["a", "c"])
    assert unknown.value.message == (
        "--servers: no MCP server 'c' in MCP config. Servers: a, b, broken."
    )


def test_options_apply_to_every_server() -> None:
    config = parse_mcp_config(
        {"mcpServers": {"t": {"command": sys.executable}}}, connect_timeout=2.5
    )
    assert config.servers[0].connect_timeout == 2.5
