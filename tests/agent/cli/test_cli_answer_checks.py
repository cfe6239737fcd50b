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
GIT = {
    "command": sys.executable,
    "args": ["-m", "tests.fixtures.failing_git_server"],
    "cwd": str(PROJECT_ROOT),
    "env": server_env(),
}


@pytest.mark.slow
def test_a_run_whose_server_command_does_not_exist_exits_8_with_one_line_and_no_answer(
    tmp_path: Path,
) -> None:
    config = mcp_config(tmp_path, time=MISSING)
    done = verity(
        "run",
        "What time is it in Tokyo?",
        "--mcp-config",
        config,
        "--quiet",
        "--max-tokens",
        "48",
        "--max-steps",
        "4",
        tmp_path=tmp_path,
    )
    assert done.returncode == 8, done.stderr
    assert done.stdout == ""  # a made-up time never reaches a script
    assert "Traceback" not in done.stderr
    # the start-up warning as it happened, then the one line that ends the run
    warning, last = done.stderr.splitlines()
    assert warning == (
        "verity: warning: MCP server 'time': command '/nonexistent/mcp-server-time' not found. "
        "Install it or give its full path. (skipped)"
    )
    assert last.startswith(
        "verity: tools unavailable, the answer may be made up: MCP server 'time' did not start: "
    )
    assert last.endswith(")") and "(verity show " in last


@pytest.mark.slow
def test_json_of_a_run_whose_server_exits_at_once_has_the_status_reason_and_answer(
    tmp_path: Path,
) -> None:
    config = mcp_config(tmp_path, time=EXITS_AT_ONCE)
    done = verity(
        "run",
        "What time is it in Tokyo?",
        "--mcp-config",
        config,
        "--quiet",
        "--max-tokens",
        "48",
        "--max-steps",
        "4",
        "--json",
        tmp_path=tmp_path,
    )
    assert done.returncode == 8, done.stderr
    assert "Traceback" not in done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "tools_unavailable"
    assert payload["reason"].startswith("MCP server 'time' did not start: ")
    assert isinstance(payload["answer"], str)  # kept, but not a success
    assert done.stderr.splitlines()[-1] == (
        "verity: tools unavailable, the answer may be made up: "
        f"{payload['reason']} (verity show {payload['run_id']})"
    )


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
        "4",
        "--no-answer-checks",
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "answered"


@pytest.mark.slow
def test_a_tool_error_the_model_cannot_get_past_ends_the_run_rejected_exit_7(
    tmp_path: Path,
) -> None:
    git = {**GIT, "alwaysAllow": ["git_commit"], "startupTimeout": 120}
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
