"""`verity run` never exits 0 with a non-answer, a made-up answer, or without its tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import server_env


def verity(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "VERITY_MODEL"}
    environment.update(
        {
            "VERITY_TRACE_DB": str(tmp_path / "t.db"),
            "PYTHONPATH": str(PROJECT_ROOT),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def mcp_config(tmp_path: Path, **servers: dict[str, Any]) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


MISSING = {"command": "/nonexistent/mcp-server-time", "startupTimeout": 5}
EXITS_AT_ONCE = {
    "command": sys.executable,
    "args": ["-c", "raise SystemExit(3)"],
    "startupTimeout": 5,
}
UNAPPROVED = {
    "command": sys.executable,
    "args": ["-m", "tests.fixtures.failing_git_server"],
    "cwd": str(PROJECT_ROOT),
    "env": server_env(),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("server", "why"),
    [
        (MISSING, "MCP server 'time' did not start: "),
        (EXITS_AT_ONCE, "MCP server 'time' did not start: "),
        (
            UNAPPROVED,
            "every tool of MCP server 'time' was withheld: they need approval and "
            "nobody could give it",
        ),
    ],
    ids=["command-missing", "exits-at-once", "all-tools-withheld"],
)
def test_a_run_without_its_servers_tools_exits_8_with_one_line_and_no_answer(
    tmp_path: Path, server: dict[str, Any], why: str
) -> None:
    done = verity(
        "run",
        "What time is it in Tokyo?",
        "--mcp-config",
        mcp_config(tmp_path, time=server),
        "--quiet",
        "--max-tokens",
        "48",
        "--max-steps",
        "2",
        tmp_path=tmp_path,
    )
    assert done.returncode == 8, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"verity: tools unavailable, the answer may be made up: {why}")
    assert last.endswith(")") and "(verity show " in last


@pytest.mark.slow
def test_json_carries_the_status_the_reason_and_the_answer_of_a_run_without_its_server(
    tmp_path: Path,
) -> None:
    done = verity(
        "run",
        "What time is it in Tokyo?",
        "--mcp-config",
        mcp_config(tmp_path, time=MISSING),
        "--json",
        "--quiet",
        "--max-tokens",
        "48",
        "--max-steps",
        "2",
        tmp_path=tmp_path,
    )
    assert done.returncode == 8, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "tools_unavailable"
    assert payload["reason"].startswith("MCP server 'time' did not start: ")
    assert isinstance(payload["answer"], str)


@pytest.mark.slow
def test_without_answer_checks_a_run_without_its_server_exits_0_as_before(tmp_path: Path) -> None:
    done = verity(
        "run",
        "What time is it in Tokyo?",
        "--mcp-config",
        mcp_config(tmp_path, time=MISSING),
        "--json",
        "--quiet",
        "--max-tokens",
        "48",
        "--max-steps",
        "2",
        "--no-answer-checks",
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "answered"


@pytest.mark.slow
def test_a_tool_error_the_model_cannot_get_past_ends_the_run_rejected_exit_7(
    tmp_path: Path,
) -> None:
    git = {**UNAPPROVED, "alwaysAllow": ["git_commit"]}
    done = verity(
        "run",
        "Commit the staged changes in /srv/repo with the message 'Fix typo' "
        "and tell me the new commit's hash.",
        "--mcp-config",
        mcp_config(tmp_path, git=git),
        "--json",
        "--quiet",
        "--max-tokens",
        "96",
        tmp_path=tmp_path,
    )
    assert done.returncode == 7, done.stdout + done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "rejected"
    assert payload["reason"].startswith("answer-checks: ")
    (line,) = done.stderr.splitlines()
    assert line == (
        f"verity: answer NOT accepted: {payload['reason']} (verity show {payload['run_id']})"
    )
