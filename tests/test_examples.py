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
        [sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
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
        [sys.executable, "calculator_agent.py"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "408" in done.stdout
