"""Every example runs to completion as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

EXAMPLES = sorted((PROJECT_ROOT / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "VERITY_TRACE_DB": str(tmp_path / "t.db")}
    done = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Traceback" not in done.stderr


def test_calculator_example_is_checked_for_its_answer() -> None:
    assert (
        "17 boxes of 24 apples" in (PROJECT_ROOT / "examples" / "calculator_agent.py").read_text()
    )


@pytest.mark.slow
def test_example_runs_beside_a_users_own_tools_and_agent_modules(tmp_path: Path) -> None:
    example = PROJECT_ROOT / "examples" / "calculator_agent.py"
    (tmp_path / "calculator_agent.py").write_text(example.read_text())
    for own in ("tools.py", "agent.py", "servers.py"):
        (tmp_path / own).write_text(f"raise RuntimeError('Verity imported the user\\'s {own}')\n")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "VERITY_TRACE_DB": str(tmp_path / "t.db")}
    done = subprocess.run(
        [sys.executable, "calculator_agent.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "408" in done.stdout


def run_example(
    source: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(source)
    environment = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "VERITY_TRACE_DB": str(tmp_path / "t.db"),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_fails_loudly(done: subprocess.CompletedProcess[str], first_words: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""  # no made-up answer where a script would take it
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(first_words)


@pytest.mark.slow
def test_the_mcp_example_fails_loudly_when_its_server_is_not_installed(tmp_path: Path) -> None:
    # what a plain install (no mcp-server-time) gives: `python -m mcp_server_time` fails at
    # once. The server starts in the example's directory, so a module there stands in for it.
    (tmp_path / "mcp_server_time.py").write_text(
        "raise SystemExit('No module named mcp_server_time')\n"
    )
    source = (PROJECT_ROOT / "examples" / "mcp_time_agent.py").read_text()
    done = run_example(source, tmp_path)
    assert_fails_loudly(done, "MCP server 'time' did not start: ")
    assert done.stderr.splitlines()[-1].endswith(
        "Install uv (uvx starts the server) or mcp-server-time."
    )


NON_ANSWER_TASK = "Reply with the single word None and nothing else."


@pytest.mark.slow
@pytest.mark.parametrize(
    ("example", "task"),
    [
        ("calculator_agent.py", "A shop sells 17 boxes of 24 apples. How many apples is that?"),
        ("custom_tool.py", "How many crates of plums are in the warehouse?"),
    ],
)
def test_an_example_fails_loudly_instead_of_printing_a_non_answer(
    example: str, task: str, tmp_path: Path
) -> None:
    source = (PROJECT_ROOT / "examples" / example).read_text()
    assert task in source
    done = run_example(source.replace(task, NON_ANSWER_TASK), tmp_path)
    assert_fails_loudly(done, "No reliable answer (rejected): answer-checks: the answer ")
