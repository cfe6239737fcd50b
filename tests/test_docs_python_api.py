"""docs/python-api.md: every Python block parses, and the one marked `<!-- run -->` runs."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PAGE = PROJECT_ROOT / "docs" / "python-api.md"
BLOCK = re.compile(r"(?P<marker><!-- run -->\n)?```python\n(?P<code>.*?)```\n", re.S)


def blocks() -> list[re.Match[str]]:
    return list(BLOCK.finditer(PAGE.read_text()))


def test_every_python_block_of_the_page_parses() -> None:
    found = blocks()
    assert len(found) >= 3
    for block in found:
        ast.parse(block["code"])


@pytest.mark.slow
def test_the_pages_runnable_block_runs_and_traces_its_runs(tmp_path: Path) -> None:
    (runnable,) = [b for b in blocks() if b["marker"]]
    script = tmp_path / "python_api.py"
    script.write_text(runnable["code"])
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    printed = done.stdout.replace(",", "")
    assert "7006652" in printed and "408" in printed
    assert (tmp_path / "python-api.db").exists()
