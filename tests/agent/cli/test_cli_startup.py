"""`verity --help`, `logs` and `show` start without importing llama.cpp, the MCP SDK or httpx:
only the chosen command's module is imported, and `verity` itself imports its names lazily."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from verity.cli import COMMANDS

IMPORTED_BY = """
import json, runpy, sys
sys.argv = ["verity", *json.loads(sys.argv[1])]
try:
    runpy.run_module("verity", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
heavy = ["httpx", "llama_cpp", "mcp"]
print(json.dumps({"code": code, "heavy": [m for m in heavy if m in sys.modules]}))
"""


def imported_by(tmp_path: Path, *argv: str) -> dict[str, object]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "VERITY_TRACE_DB": str(tmp_path / "traces.db"),
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY, json.dumps(argv)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr
    outcome: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return outcome


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["--help"], 0), (["logs"], 0), (["show", "20260101-000000-aaaaaa"], 2), (["logs", "-h"], 0)],
)
def test_help_logs_and_show_never_import_llama_cpp_mcp_or_httpx(
    tmp_path: Path, argv: list[str], code: int
) -> None:
    assert imported_by(tmp_path, *argv) == {"code": code, "heavy": []}


def test_run_still_loads_its_whole_parser(tmp_path: Path) -> None:
    outcome = imported_by(tmp_path, "run", "--help")
    assert outcome["code"] == 0
    assert "llama_cpp" in outcome["heavy"]  # type: ignore[operator]


def test_the_help_lines_are_those_of_the_commands_own_parsers() -> None:
    parser = argparse.ArgumentParser(prog="verity")
    commands = parser.add_subparsers()
    for module in dict.fromkeys(spec for spec, _ in COMMANDS.values()):
        name, _, function = module.partition(":")
        getattr(importlib.import_module(name), function or "add_commands")(commands)
    listed = {action.dest: action.help for action in commands._choices_actions}
    assert listed == {name: help_text for name, (_, help_text) in COMMANDS.items()}


AGENT_IMPORTS = """
import json, sys, threading
import verity.agent
imported_early = "mcp" in sys.modules
loading_when_imported = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "mcp":
            names = [thread.name for thread in threading.enumerate()]
            loading_when_imported.append("verity-model-load" in names)

sys.meta_path.insert(0, Watch())
from verity import Agent, MCPConfig
from verity.tools.mcp._types import StdioServer
agent = Agent(mcp=MCPConfig(servers=[StdioServer(name="x", command="true")]), trace=False)
agent.close()
print(json.dumps({"early": imported_early, "loading": loading_when_imported}))
"""


@pytest.mark.slow
def test_an_agent_imports_the_mcp_sdk_only_while_its_model_loads(tmp_path: Path) -> None:
    """The SDK takes ~1 s to import, as long as a small model takes to load: they overlap."""
    done = subprocess.run(
        [sys.executable, "-c", AGENT_IMPORTS],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"early": False, "loading": [True]}
