"""`verity mcp ...` run as a user would, against real servers configured in an mcpServers file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, free_port, server_env
from verity.trace.store import TraceStore

TIME_SERVER = Path(sys.executable).with_name("mcp-server-time")
NPM_CACHE = PROJECT_ROOT / ".tools" / "npm-cache"
UNTRUSTED = "its read-only hint comes from a server not marked trusted"
ASKS = "Tools that ask are withheld when nobody can answer (stdin is not a terminal): run them "
ASKS += "with --trust SERVER (read-only ones) or --allow PATTERN."


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {
                        "command": str(TIME_SERVER),
                        "args": ["--local-timezone", "UTC"],
                        "env": server_env(),
                    },
                    "faulty": {
                        "command": sys.executable,
                        "args": ["-m", "tests.fixtures.faulty_server"],
                        "env": server_env(),
                        "cwd": str(PROJECT_ROOT),
                        "excludeTools": ["crash"],
                    },
                    "typo": {"comand": "mcp-server-time"},
                }
            }
        )
    )
    return path


def verity(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_mcp_list_shows_each_server_with_era_tools_and_health_and_reports_broken_entries(
    config: Path,
) -> None:
    done = verity("mcp", "list", "--json", "--mcp-config", str(config))
    assert done.returncode == 1, done.stderr  # the broken entry
    servers = {s["name"]: s for s in json.loads(done.stdout)["servers"]}
    assert servers["time"] == {
        "name": "time",
        "transport": "stdio",
        "state": "connected",
        "protocol_version": "2026-07-28",
        "tools": ["get_current_time", "convert_time"],
        "restarts": 0,
        "error": None,
        "unavailable": {},
        "resources": [],
        "prompts": [],
        "grammars": {},
        "approval": {
            tool: {"decision": "ask", "by": "policy", "reason": UNTRUSTED}
            for tool in ("get_current_time", "convert_time")
        },
    }
    assert servers["faulty"]["resources"] == ["notes://readme", "notes://{name}"]
    assert servers["faulty"]["prompts"] == ["review"]
    assert "crash" not in servers["faulty"]["tools"] and "echo" in servers["faulty"]["tools"]
    assert "typo" not in servers
    assert done.stderr == (
        f"verity: warning: {config}: ignoring 'comand' (in 'typo'): Verity does not use it.\n"
        "verity: warning: MCP server 'typo': missing \"command\" (the program that starts the "
        "server). (skipped)\n"
    )


def test_mcp_call_prints_the_result_and_exits_1_on_a_tool_error(config: Path) -> None:
    done = verity(
        "mcp",
        "call",
        "time",
        "convert_time",
        "--mcp-config",
        str(config),
        "--args",
        '{"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}',
    )
    failed = verity("mcp", "call", "faulty", "bad_output", "--mcp-config", str(config))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["target"]["datetime"].endswith("T21:00:00+09:00")
    assert (failed.returncode, failed.stdout) == (1, "Error executing tool bad_output\n")
    assert "Traceback" not in done.stderr + failed.stderr


def test_mcp_read_and_prompt_print_resources_and_prompts(config: Path) -> None:
    read = verity("mcp", "read", "faulty", "notes://readme", "--mcp-config", str(config))
    prompt = verity(
        "mcp",
        "prompt",
        "faulty",
        "review",
        "--args",
        '{"code": "x = 1"}',
        "--mcp-config",
        str(config),
    )
    assert (read.returncode, read.stdout) == (
        0,
        "[resource <notes://readme> (text/plain)]\nThe faulty server breaks on purpose.\n",
    )
    assert (prompt.returncode, prompt.stdout) == (0, "[user]\nPlease review:\nx = 1\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("call", "nope", "x"),
            "verity: error: No MCP server 'nope' in the config. Servers: time, faulty.\n",
        ),
        (
            ("call", "faulty", "crash"),
            "verity: error: MCP server 'faulty' offers no tool 'crash'.\n",
        ),
        (
            ("call", "time", "get_current_time", "--args", "[1]"),
            'verity: error: --args must be a JSON object such as {"a": 1}.\n',
        ),
    ],
)
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
        2,
        f"verity: error: MCP config {tmp_path / 'none.json'} does not exist.\n",
    )


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
def test_run_without_a_terminal_says_what_it_withheld_allows_patterns_and_traces_decisions(
    tmp_path: Path,
) -> None:
    config = tmp_path / "time.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "time": {
                        "command": str(TIME_SERVER),
                        "args": ["--local-timezone", "UTC"],
                        "env": server_env(),
                    }
                }
            }
        )
    )
    traces = tmp_path / "traces.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verity",
            "run",
            "--mcp-config",
            str(config),
            "--json",
            "--quiet",
            "--max-steps",
            "3",
            "--allow",
            "time__convert_*",
            "What time is it in Tokyo when it is 12:00 in UTC? Use the convert_time tool.",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "VERITY_TRACE_DB": str(traces)},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    # the server is not trusted: its read-only hint does not let get_current_time run unasked
    assert done.stderr.splitlines()[0] == (
        "verity: 1 MCP tool withheld (they need approval and stdin is not a terminal) from time "
        "(1). Run a server's read-only tools with --trust time, or any with --allow 'time__*'; -v "
        "lists them."
    )
    assert "get_current_time" not in done.stderr  # one line, not one per tool
    store = TraceStore(traces)
    record = store.run(json.loads(done.stdout)["run_id"])
    assert record is not None
    decisions = {(a["tool_name"], a["outcome"], a["decided_by"]) for a in record["approvals"]}
    assert ("time__get_current_time", "withheld", "policy") in decisions
    assert ("time__convert_time", "allowed", "allow") in decisions  # the model called it
    assert "time__convert_time" in [c["tool_name"] for c in record["tool_calls"]]


def faulty_entry(**extra: object) -> dict[str, object]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fixtures.faulty_server"],
        "env": server_env(),
        "cwd": str(PROJECT_ROOT),
        **extra,
    }


def write_config(tmp_path: Path, servers: dict[str, object]) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@pytest.mark.parametrize(
    ("args", "last_line"),
    [
        (
            ("call", "faulty", "hang"),
            "verity: error: MCP server 'faulty' did not answer tools/call 'hang' within 1 s; the "
            "request was cancelled. Try again or answer without this tool.",
        ),
        (
            ("call", "faulty", "crash"),
            "verity: error: MCP server 'faulty' stopped: the connection closed during tools/call "
            "'crash'. It will be restarted for the next call; try again, or answer without this "
            "tool.",
        ),
        (
            ("read", "faulty", "nothing://here"),
            "verity: error: MCP server 'faulty': Unknown resource: nothing://here",
        ),
    ],
)
def test_mcp_call_read_and_prompt_on_a_failing_server_print_one_line_and_exit_4(
    tmp_path: Path, args: tuple[str, ...], last_line: str
) -> None:
    path = write_config(tmp_path, {"faulty": faulty_entry(timeout=1)})
    done = verity("mcp", *args, "--mcp-config", str(path))
    assert (done.returncode, done.stderr.splitlines()[-1]) == (4, last_line)
    assert "Traceback" not in done.stderr


def test_mcp_list_exits_1_when_a_server_fails_to_start_and_counts_tools_in_the_singular(
    tmp_path: Path,
) -> None:
    raw = str(PROJECT_ROOT / "tests" / "fixtures" / "raw_server.py")
    path = write_config(
        tmp_path,
        {
            "one": {**faulty_entry(), "includeTools": ["echo"]},
            "broken": {
                "command": sys.executable,
                "args": ["-c", "import sys; sys.exit(3)"],
                "env": server_env(),
            },
            "silent": {
                "command": sys.executable,
                "args": [raw, "--silent-list"],
                "env": server_env(),
                # past the 3 s discover probe, a loaded machine needs time to start it again
                "startupTimeout": 10,
            },
        },
    )
    state = tmp_path / "state"
    done = verity("mcp", "list", "--mcp-config", str(path), env={"XDG_STATE_HOME": str(state)})
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    name, transport, health, _era, counts = lines[0].split("  ", 4)  # the era depends on timing
    assert (name, transport, health, counts) == ("one", "stdio", "connected", "1 tool  0 restarts")
    assert lines[1] == f"  tool: echo  [asks: {UNTRUSTED}]"
    assert "broken  stdio  failed  -  0 tools  0 restarts" in lines
    assert "silent  stdio  failed  2025-11-25  0 tools  0 restarts" in lines
    # a server that wrote nothing to stderr has no output in the log to point to
    [warning] = [line for line in done.stderr.splitlines() if "'silent'" in line]
    assert warning.startswith(
        "verity: warning: MCP server 'silent': it did not list its tools within 10 s; skipping it. "
    )
    assert warning.endswith(
        "A first start through npx or uvx downloads the package: give the server more time with "
        '"startupTimeout" (seconds) in its config entry.'
    )


def test_mcp_call_prints_what_a_server_sent_without_escape_sequences(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"faulty": faulty_entry()})
    hostile = "\x1b]0;pwned\x07\x1b[2Jsafe\x1b[31m text\x1b]52;c;ZWNobyBoaQ==\x07\u202e!"
    done = verity(
        "mcp",
        "call",
        "faulty",
        "echo",
        "--args",
        json.dumps({"text": hostile}),
        "--mcp-config",
        str(path),
    )
    assert (done.returncode, done.stdout) == (0, "safe text!\n")


def test_server_stderr_goes_to_the_log_with_the_time_and_the_servers_name(tmp_path: Path) -> None:
    script = "import sys; print('starting up', file=sys.stderr, flush=True); sys.exit(1)"
    path = write_config(
        tmp_path,
        {"my server": {"command": sys.executable, "args": ["-c", script], "env": server_env()}},
    )
    state = tmp_path / "state"
    done = verity("mcp", "list", "--mcp-config", str(path), env={"XDG_STATE_HOME": str(state)})
    assert done.returncode == 1
    (line,) = (state / "verity" / "log" / "mcp-servers.log").read_text().splitlines()
    stamp, name, text = line.split(" ", 2)
    assert datetime.fromisoformat(stamp).tzinfo is not None
    assert (name, text) == ("[my", "server] starting up")


def test_a_literal_claude_desktop_config_with_npx_starts_the_npm_server(tmp_path: Path) -> None:
    if shutil.which("npx") is None:
        pytest.skip("npx is not installed")
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(
        json.dumps(
            {
                "globalShortcut": "",
                "mcpServers": {
                    "memory store": {
                        "command": "npx",
                        "args": ["-y", "@modelcontextprotocol/server-memory@2026.8.31"],
                        "env": {
                            "MEMORY_FILE_PATH": "${VERITY_TEST_DIR}/memory.jsonl",
                            "npm_config_cache": "${VERITY_TEST_NPM_CACHE:-" + str(NPM_CACHE) + "}",
                            **server_env(),
                        },
                    }
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
        env={"VERITY_TEST_DIR": str(tmp_path)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (server,) = json.loads(done.stdout)["servers"]
    assert (server["name"], server["state"]) == ("memory store", "connected")
    assert "read_graph" in server["tools"]
    call = verity(
        "mcp",
        "call",
        "memory store",
        "read_graph",
        "--mcp-config",
        str(config),
        env={"VERITY_TEST_DIR": str(tmp_path)},
        timeout=300,
    )
    assert call.returncode == 0, call.stderr
    assert json.loads(call.stdout) == {"entities": [], "relations": []}


def test_mcp_list_names_unavailable_tools_and_relaxed_grammars(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "schemas": {
                        "command": sys.executable,
                        "args": ["-m", "tests.fixtures.schema_server"],
                        "env": server_env(),
                        "cwd": str(PROJECT_ROOT),
                    }
                }
            }
        )
    )
    done = verity("mcp", "list", "--mcp-config", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "  tool: multiply  [asks: it may change things (not read-only)]",
        "  tool: annotate  (grammar relaxed, not enforced: maxLength, not)  [asks: it may change "
        "things (not read-only)]",
        "  unavailable tool: lookup: its $ref '#/definitions/Key' cannot be resolved",
        ASKS,
    ]
    assert done.stderr == (
        "verity: warning: MCP server 'schemas': tool 'lookup' is unavailable: its $ref "
        "'#/definitions/Key' cannot be resolved\n"
    )


def test_mcp_list_shows_each_tools_approval_and_trust_lets_read_only_tools_run(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, {"faulty": faulty_entry(includeTools=["echo", "write_note"])})
    home = {"XDG_CONFIG_HOME": str(tmp_path / "config")}  # no stored approvals
    untrusted = verity("mcp", "list", "--mcp-config", str(path), env=home)
    trusted = verity("mcp", "list", "--trust", "faulty", "--mcp-config", str(path), env=home)
    assert untrusted.returncode == trusted.returncode == 0, untrusted.stderr + trusted.stderr
    reads = [
        "  tool: read_resource (added by Verity)  [runs: an MCP resources/read request: a read]",
        "  tool: get_prompt (added by Verity)  [runs: an MCP prompts/get request: a read]",
    ]
    assert untrusted.stdout.splitlines()[1:5] == [
        f"  tool: echo  [asks: {UNTRUSTED}]",
        "  tool: write_note  [asks: it may change things (not read-only)]",
        *reads,
    ]
    assert trusted.stdout.splitlines()[1:5] == [
        "  tool: echo  [runs: read-only, as declared by a trusted source]",
        "  tool: write_note  [asks: it may change things (not read-only)]",
        *reads,
    ]
    assert untrusted.stdout.splitlines()[-1] == ASKS


def test_trust_naming_a_server_the_config_lacks_exits_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"faulty": faulty_entry()})
    done = verity("mcp", "list", "--trust", "fauty", "--mcp-config", str(path))
    assert (done.returncode, done.stderr) == (
        2,
        f"verity: error: --trust: no MCP server 'fauty' in {path}. Servers: faulty.\n",
    )


def test_serve_takes_trust_and_names_a_server_the_config_lacks(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"faulty": faulty_entry()})
    done = verity("serve", "--trust", "faulty", "--trust", "fauty", "--mcp-config", str(path))
    assert (done.returncode, done.stderr) == (
        2,
        f"verity: error: --trust: no MCP server 'fauty' in {path}. Servers: faulty.\n",
    )


@pytest.mark.slow
def test_run_with_trust_offers_read_only_tools_and_v_lists_what_was_withheld(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, {"faulty": faulty_entry(includeTools=["echo", "write_note"])})
    traces = tmp_path / "traces.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verity",
            "run",
            "--mcp-config",
            str(path),
            "--trust",
            "faulty",
            "-v",
            "--json",
            "--quiet",
            "--max-steps",
            "1",
            "Say hello.",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "VERITY_TRACE_DB": str(traces),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        },
    )
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[:2] == [
        "verity: 1 MCP tool withheld (they need approval and stdin is not a terminal) from faulty "
        "(1). They may change things: allow them with --allow 'faulty__*'.",
        "verity:   faulty__write_note: needs approval (it may change things (not read-only)) and "
        "nobody can be asked",
    ]
    store = TraceStore(traces)
    (run_id,) = [row["id"] for row in store.read("select id from runs")]
    record = store.run(run_id)
    assert record is not None
    withheld = [a["tool_name"] for a in record["approvals"] if a["outcome"] == "withheld"]
    assert withheld == ["faulty__write_note"]  # echo, trusted now, was offered
