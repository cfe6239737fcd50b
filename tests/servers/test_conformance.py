"""The MCP conformance suite against `verity serve --http`, as scripts/conformance.sh runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "conformance.sh"
ERAS = ("2025-11-25", "2026-07-28")
# What the expected-failure lists held when they were written: they may only shrink.
FIRST_BASELINE: dict[str, set[str]] = {
    "2025-11-25": set(),
    "2026-07-28": {
        "server-stateless:sep-2575-server-rejects-undeclared-capability",
        "server-stateless:sep-2575-missing-capability-http-400",
        "server-stateless:sep-2575-server-sends-prompts-list-changed-on-subscription",
        "server-stateless:sep-2575-server-sends-tools-list-changed-on-subscription",
    },
}


def scenarios(era: str) -> list[str]:
    """The scenarios the script runs at `era`."""
    name = "scenarios_" + era.replace("-", "_")
    found = re.search(rf"{name}=\((.*?)\)", SCRIPT.read_text(), re.S)
    assert found, f"{SCRIPT} has no {name} list"
    return found[1].split()


@pytest.mark.parametrize("era", ERAS)
def test_expected_failures_only_shrink(era: str) -> None:
    text = (PROJECT_ROOT / "conformance" / f"expected-failures.{era}.yml").read_text()
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] in ("server:", "server: []")
    entries = {line.strip().removeprefix("- ") for line in lines[1:]}
    assert all(line.startswith("  - ") for line in lines[1:])
    assert entries <= FIRST_BASELINE[era]


def test_docs_list_the_scenarios_the_script_runs() -> None:
    readme = (PROJECT_ROOT / "docs" / "serve.md").read_text()
    for era in ERAS:
        listed = re.search(rf"- Protocol {era}: (.*?)\.\n", readme, re.S)
        assert listed, f"docs/serve.md lists no conformance scenarios for {era}"
        assert re.findall(r"`([\w-]+)`", listed[1]) == scenarios(era)


def test_the_conformance_suite_passes_against_verity_serve(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "results")],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode == 3:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    ran = [line for line in done.stdout.splitlines() if line.startswith("conformance: ")]
    assert len(ran) == sum(len(scenarios(era)) for era in ERAS)
