"""Hostile MCP servers against the real `verity` command: stderr floods, escape sequences in the
server log, tool lists too big for any prompt, and `--allow` patterns as people write them."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, server_env
from verity import parse_mcp_config
from verity._assembly import approved_toolset
from verity.tools.toolset import call_tool

FLOOD_MB = 30


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float


def verity_measured(tmp_path: Path, *args: str, env: dict[str, str]) -> Measured:
    """Run `verity` and read its peak RSS from the kernel (wait4), not by sampling."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "verity", *args],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
        )
        deadline = time.monotonic() + 120
        while (done := os.wait4(process.pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                process.kill()
            time.sleep(0.05)
    _, status, usage = done
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        returncode=process.returncode,
        stdout=out.read_text(),
        stderr=err.read_text(),
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
    )


def write_config(tmp_path: Path, servers: dict[str, object]) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def faulty_entry() -> dict[str, object]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fixtures.faulty_server"],
        "env": server_env(),
        "cwd": str(PROJECT_ROOT),
        "startupTimeout": 60,
    }


def schema_entry(*flags: str) -> dict[str, object]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fixtures.schema_server", *flags],
        "env": server_env(),
        "cwd": str(PROJECT_ROOT),
        "startupTimeout": 60,
    }


def run_verity(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_a_server_writing_30_mb_of_stderr_on_one_line_costs_verity_no_memory_for_it(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {"faulty": faulty_entry()})
    state = tmp_path / "state"

    def flood(megabytes: int) -> Measured:
        arguments = json.dumps({"megabytes": megabytes})
        return verity_measured(
            tmp_path,
            "mcp",
            "call",
            "faulty",
            "flood_stderr",
            "--args",
            arguments,
            "--mcp-config",
            str(config),
            env={"XDG_STATE_HOME": str(state)},
        )

    quiet, flooded = flood(0), flood(FLOOD_MB)
    assert (quiet.returncode, flooded.returncode) == (0, 0), flooded.stderr
    assert flooded.stdout == f"wrote {FLOOD_MB} MB\n"
    # Buffering the line whole costs 3-4 times its size (bytes, text, the stamped line).
    assert flooded.peak_rss_mb - quiet.peak_rss_mb < 10
    logged = [
        line.split(" ", 1)[1]
        for line in (state / "verity" / "log" / "mcp-servers.log").read_text().splitlines()
    ]
    kept = 16 * 1024
    assert f"[faulty] {'x' * kept}" in logged
    assert (
        f"[faulty] [... {FLOOD_MB * 1_000_000 - kept} more bytes of this line not kept]" in logged
    )
    assert max(len(line) for line in logged) < kept + 100


@pytest.mark.parametrize("older", [False, True], ids=["new log", "log left 0644 by an older one"])
def test_the_server_log_is_private_and_shows_escape_sequences_as_text(
    tmp_path: Path, older: bool
) -> None:
    log = tmp_path / "state" / "verity" / "log" / "mcp-servers.log"
    if older:
        log.parent.mkdir(parents=True)
        log.touch(mode=0o644)
        log.chmod(0o644)
    script = (
        "import sys; sys.stderr.write('\\x1b]0;pwned\\x07\\x1b[2Jcleared \\u202eevil\\n'); "
        "sys.exit(1)"
    )
    config = write_config(
        tmp_path, {"bad": {"command": sys.executable, "args": ["-c", script], "env": server_env()}}
    )
    done = run_verity(
        "mcp", "list", "--mcp-config", str(config), env={"XDG_STATE_HOME": str(tmp_path / "state")}
    )
    assert done.returncode == 1
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    (line,) = log.read_text().splitlines()
    assert line.split(" ", 1)[1] == "[bad] \\x1b]0;pwned\\x07\\x1b[2Jcleared \\u202eevil"


async def test_allow_patterns_take_the_server_name_as_written_in_any_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # where approvals.json would go
    config = parse_mcp_config({"mcpServers": {"My Server": faulty_entry()}})
    with (tmp_path / "servers.log").open("w") as errlog, anyio.fail_after(120):
        toolset = approved_toolset(
            config, ask=None, elicitation=None, errlog=errlog, allow=["my server__WRITE_*"]
        )
        async with toolset:
            names = [spec.name for spec in await toolset.list_tools()]
            noted = await call_tool(toolset, "My_Server__write_note", {"text": "hi"}, time_limit=10)
    assert "My_Server__write_note" in names
    assert "My_Server__confirm" not in names  # unannotated and not allowed: still withheld
    assert noted.content == "noted: hi"


@pytest.mark.slow
def test_a_run_goes_on_beside_a_server_with_a_10k_wide_and_a_100_deep_tool(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"schemas": schema_entry("--hostile")})
    traces = tmp_path / "traces.db"
    done = run_verity(
        "run",
        "--mcp-config",
        str(config),
        "--allow",
        "schemas__*",
        "--max-steps",
        "2",
        "--temperature",
        "0",
        "What is 2+3?",
        env={"VERITY_TRACE_DB": str(traces)},
    )
    # Its own answer (0) or its step limit (4) ends the run: never the tool list (3, at step 1).
    assert done.returncode in (0, 4), done.stderr
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if "is unavailable" in line]
    assert warnings == [
        "verity: warning: MCP server 'schemas': tool 'lookup' is unavailable: its $ref "
        "'#/definitions/Key' cannot be resolved",
        "verity: warning: MCP server 'schemas': tool 'wide' is unavailable: its definition takes "
        "136.9 KiB, over the limit of 16.0 KiB per tool",
        "verity: warning: MCP server 'schemas': tool 'deep' is unavailable: its input schema is "
        "nested 201 levels deep, over the limit of 64",
    ]
    with closing(sqlite3.connect(traces)) as db:
        offered = db.execute(
            "select c.text from model_calls m join contents c on c.hash = m.tools_hash "
            "where m.purpose = 'agent' order by m.id"
        ).fetchall()
    assert offered  # the model was asked, with the server's usable tools
    names = {tool["name"] for tool in json.loads(offered[0][0])}
    assert {"schemas__multiply", "schemas__annotate"} <= names
    assert not {"schemas__wide", "schemas__deep", "schemas__lookup"} & names


@pytest.mark.slow
def test_a_prompt_the_tools_overflow_names_the_largest_tools(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"schemas": schema_entry("--bulky")})
    done = run_verity(
        "run",
        "--mcp-config",
        str(config),
        "--allow",
        "schemas__*",
        "--n-ctx",
        "1024",
        "What is 2+3?",
        env={"VERITY_TRACE_DB": str(tmp_path / "traces.db")},
    )
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert re.fullmatch(
        r"verity: model error: The conversation needs \d+ tokens but the context holds 1024; the "
        r"\d+ tool definitions take \d+ of them, the largest schemas__glossary \(\d+ tokens\), "
        r"\w+ \(\d+ tokens\), \w+ \(\d+ tokens\)( and \d+ more)?\. Raise n_ctx, or leave the "
        r"largest tools out \(\"excludeTools\" in their MCP server's config entry\)\.",
        last,
    ), last
