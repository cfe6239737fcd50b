"""The code base stays ruff-clean and its layers stay in order (servers -> agent -> tools)."""

from __future__ import annotations

import importlib.util
import pkgutil
import re
import subprocess
import sys
import tomllib

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


def layered_modules() -> dict[str, set[str]]:
    """The modules each import-linter `layers` contract places, by container."""
    contracts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]
    placed: dict[str, set[str]] = {}
    for contract in contracts["importlinter"]["contracts"]:
        if contract["type"] != "layers":
            continue
        names = {n.strip() for layer in contract["layers"] for n in re.split(r"[|:]", layer)}
        for container in contract["containers"]:
            placed.setdefault(container, set()).update(names)
    return placed


def test_every_module_of_the_agent_tools_and_servers_is_in_a_layer() -> None:
    placed = layered_modules()
    assert {"verity", "verity.tools", "verity.servers"} <= set(placed)
    for container, names in placed.items():
        spec = importlib.util.find_spec(container)
        assert spec is not None and spec.submodule_search_locations is not None, container
        found = {module.name for module in pkgutil.iter_modules(spec.submodule_search_locations)}
        outside = sorted(found - names)
        assert not outside, (
            f"{', '.join(f'{container}.{n}' for n in outside)} in no layer of the import-linter "
            f"contract for {container} (pyproject.toml): add each to the layer that matches what "
            "it imports and what imports it, so that lint-imports checks it"
        )


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


def test_test_folders_mirror_the_package_folders() -> None:
    """tests/agent/verify holds the tests of agent/verify, and so on: a folder of tests names a
    folder of the code (fixtures and the benchmarks' tests aside)."""
    tests = PROJECT_ROOT / "tests"
    outside = {tests / "fixtures", tests / "bench"}
    unmatched = [
        str(folder.relative_to(tests))
        for folder in sorted(tests.rglob("*"))
        if folder.is_dir()
        and folder.name != "__pycache__"
        and not any(folder == o or o in folder.parents for o in outside)
        and not (PROJECT_ROOT / folder.relative_to(tests)).is_dir()
    ]
    assert unmatched == [], f"test folders with no code folder of the same path: {unmatched}"
    tested = {p.parent.relative_to(tests).as_posix() for p in tests.rglob("test_*.py")}
    packages = {"agent/cli", "agent/models", "agent/trace", "agent/verify", "tools/mcp"}
    assert packages <= tested, f"packages without a test folder: {sorted(packages - tested)}"
