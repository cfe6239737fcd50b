"""Ctrl-C and SIGTERM at random moments of real `verity run`s: no crash, run cancelled, no orphan.

Each round starts the real CLI on the embedded model with a real MCP server whose tool is slow,
waits for a moment of the run (its start, where the model loads and generates; a tool call in
flight; the second model turn), sends the signal a random time later, and checks what a user
and a supervisor see. Every other round sends the signal twice, the second during shutdown.
VERITY_SIGNAL_ROUNDS sets the rounds per signal (the issue's measurement used 20); the default
keeps CI time sane.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, leftover_processes, server_env

ROUNDS = int(os.environ.get("VERITY_SIGNAL_ROUNDS", "2"))
TASK = (
    "Use the research tool to look up red-black trees, then write a Python module implementing "
    "a red-black tree with insert, delete and search, with docstrings."
)
MOMENTS = ("verity: run ", "-> library__research(", "[step 2 ")
"""Where a round's random delay starts: run start (model load, first turn), a tool call, turn 2."""


class Run:
    """One `verity run` subprocess whose stderr lines are collected as they arrive."""

    def __init__(self, tmp_path: Path) -> None:
        config = tmp_path / "mcp.json"
        server = {
            "command": sys.executable,
            "args": ["-m", "tests.fixtures.research_server"],
            "env": server_env(),
            "alwaysAllow": ["research"],
        }
        config.write_text(json.dumps({"mcpServers": {"library": server}}))
        environment = {k: v for k, v in os.environ.items() if k != "VERITY_MODEL"}
        environment.update(
            VERITY_TRACE_DB=str(tmp_path / "traces.db"), PYTHONPATH=str(PROJECT_ROOT)
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "verity", "run", TASK, "--mcp-config", str(config)],
            cwd=PROJECT_ROOT,
            env=environment,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        self.lines.extend(line.rstrip("\n") for line in self.process.stderr)

    def wait_for(self, marker: str, timeout: float = 400) -> None:
        deadline = time.monotonic() + timeout
        while not any(marker in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {marker!r} in the run's stderr: {self.lines[-5:]}")
            time.sleep(0.05)

    def stop(self, signum: int, *, twice: bool) -> int:
        self.process.send_signal(signum)
        if twice:  # an impatient user: the second signal lands while the run shuts down
            time.sleep(0.05)
            self.process.send_signal(signum)
        code = self.process.wait(timeout=120)
        self._reader.join(timeout=10)  # it takes the last lines, up to the end of the stream
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code


def run_statuses(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [status for (status,) in conn.execute("select status from runs")]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_a_random_moment_cancels_the_run_without_a_crash(
    signum: signal.Signals, tmp_path: Path
) -> None:
    moments = random.Random(int(signum))
    problems = []
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        run = Run(folder)
        # SIGTERM's rounds start where SIGINT's stop: two rounds each cover the three moments
        first = 0 if signum == signal.SIGINT else ROUNDS
        moment, delay = MOMENTS[(first + round_) % len(MOMENTS)], moments.uniform(0, 2.0)
        run.wait_for(moment)
        time.sleep(delay)
        sent = time.monotonic()
        code = run.stop(signum, twice=round_ % 2 == 1)
        statuses = run_statuses(folder / "traces.db")
        print(
            f"{signum.name} round {round_}: {moment!r}+{delay:.2f}s -> exit {code} "
            f"after {time.monotonic() - sent:.2f}s, runs {statuses}"
        )
        if code != 128 + signum:  # never negative: no SIGSEGV, SIGABRT, or death by SIGTERM
            problems.append(f"round {round_}: exit {code}: {run.lines[-3:]}")
        if run.lines[-1:] != [f"verity: interrupted by {signum.name}"]:
            problems.append(f"round {round_}: stderr ends {run.lines[-3:]}")
        if any("Traceback" in line for line in run.lines):
            problems.append(f"round {round_}: a traceback: {run.lines}")
        if statuses not in ([], ["cancelled"]):
            problems.append(f"round {round_}: runs {statuses}")
        if left := leftover_processes():
            problems.append(f"round {round_}: processes outlived the run: {left}")
            assert_no_leftovers()  # waits a moment, and fails if they are really left
    assert problems == []
