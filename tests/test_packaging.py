"""Builds need no symbolic link: package-dir maps agent/, tools/ and servers/ into `verity`.

The links (verity -> agent, agent/tools -> ../tools, agent/servers -> ../servers) only serve the
tools that read the checkout. A clone without `core.symlinks` (Windows) has plain files in their
place: the wheel and the sdist must still hold every module, and the tests say what to fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

LINKS = {"verity": "agent", "agent/tools": "../tools", "agent/servers": "../servers"}
ROOTS = {"agent": "verity", "tools": "verity.tools", "servers": "verity.servers"}


def package_folders() -> dict[str, Path]:
    """Every package of the source folders, by its import name (links not followed)."""
    found = {}
    for root, name in ROOTS.items():
        for init in sorted((PROJECT_ROOT / root).rglob("__init__.py")):
            relative = init.parent.relative_to(PROJECT_ROOT / root)
            if any((PROJECT_ROOT / root / p).is_symlink() for p in relative.parents) or (
                relative.parts and (PROJECT_ROOT / root / relative).is_symlink()
            ):
                continue
            found[".".join([name, *relative.parts])] = init.parent
    return found


def source_files() -> list[Path]:
    """The checkout's files as git knows them (untracked ones too, ignored ones not)."""
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [Path(name) for name in listed.split("\0") if name]


def test_the_links_are_symbolic_links_not_plain_files() -> None:
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("an unpacked sdist has no links: only a checkout needs them")
    for link, target in LINKS.items():
        path = PROJECT_ROOT / link
        if not path.is_symlink():
            held = path.read_text()[:40] if path.is_file() else "nothing"
            pytest.fail(
                f"{link} is not a symbolic link to {target} (it holds {held!r}): git checked it "
                "out without core.symlinks (Windows). Builds do not need it, but PYTHONPATH=., "
                "mypy and lint-imports do: run `git config core.symlinks true` and "
                "`git checkout -- verity agent/tools agent/servers`."
            )
        assert os.readlink(path) == target


def test_the_package_list_names_every_package_folder() -> None:
    settings = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert settings["package-dir"] == {v: k for k, v in ROOTS.items()}
    assert sorted(settings["packages"]) == sorted(package_folders())


def copy_without_links(destination: Path) -> None:
    """The checkout as a clone without `core.symlinks` has it: each link a plain file."""
    for relative in source_files():
        source, target = PROJECT_ROOT / relative, destination / relative
        if not source.exists() and not source.is_symlink():
            continue  # deleted, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.write_text(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)


def built(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def expected_modules() -> set[str]:
    """Each module of the source folders at the path it has in the wheel."""
    return {
        "/".join([*name.split("."), file.name])
        for name, folder in package_folders().items()
        for file in folder.glob("*.py")
    }


def test_a_wheel_and_an_sdist_build_from_a_checkout_whose_links_are_plain_files(
    tmp_path: Path,
) -> None:
    checkout, out = tmp_path / "checkout", tmp_path / "dist"
    copy_without_links(checkout)
    assert (checkout / "verity").read_text() == "agent"
    pip = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation"]
    built([*pip, "--no-cache-dir", "-w", str(out)], checkout)
    built([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(out)], checkout)
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in names if n.endswith(".py")}
    assert modules == expected_modules()
    assert {"verity/py.typed", "verity/tools/py.typed", "verity/prompts/system.md"} <= names
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    wanted = {"pyproject.toml", "MANIFEST.in", "agent/agent.py", "tools/mcp/_toolset.py", ".ci/run"}
    wanted |= {"servers/verity.py", "tests/conftest.py", "tests/fixtures/serve.py"}
    wanted |= {"examples/calculator_agent.py", "docs/python-api.md"}
    assert wanted <= members
    assert "verity" not in members  # the link's plain file stays out of the sdist
