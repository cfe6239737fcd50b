"""The code base stays ruff-clean and its layers stay in order (servers -> agent -> tools)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT_ROOT

LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_ruff_finds_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_layers_hold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_passes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_owns_the_layout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "agent", "tools", "servers", "tests",
         "bench", "examples"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    skips = [
        path
        for folder in ("agent", "tools", "servers", "tests", "bench", "examples")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.rstrip().endswith("# fmt: skip")
    ]
    assert len(skips) <= 10, f"{len(skips)} lines laid out by hand: let ruff format do it"
