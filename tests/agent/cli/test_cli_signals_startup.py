"""Ctrl-C and SIGTERM while `verity serve` or `verity run` starts: one line, the usual exit code.

Each round starts the real command with the embedded model and sends the signal at a moment of
its start-up, seen from outside: while Python imports Verity (pydantic's native module is
mapped), just after llama.cpp's library is loaded (libllama is mapped), just as it announces
itself (the server starting to listen, the run starting), or at a random time (model loading
included) once the process handles SIGTERM at all. Before that only the interpreter itself
runs, and the system's default applies as to any program.
VERITY_SIGNAL_ROUNDS sets the rounds per signal and command.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, free_port, server_env

ROUNDS = int(os.environ.get("VERITY_SIGNAL_ROUNDS", "1"))
MOMENTS = ("imports", "llama.cpp", "announced", "any")
COMMANDS = {
    "serve": ["serve", "--http", "--port", "{port}"],
    "run": ["run", "Write a long story about a lighthouse keeper, at least 500 words."],
}
ANNOUNCEMENTS = {"serve": "verity: serving MCP on ", "run": "verity: run "}


class Started:
    """One start of the command, its stderr lines collected as they arrive."""

    def __init__(self, argv: list[str], environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "verity", *argv],
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        self.lines.extend(line.rstrip("\n") for line in self.process.stderr)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=120)
        self._reader.join(timeout=10)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code


def mapped(pid: int, name: str) -> bool:
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def handles_sigterm(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def wait_for_moment(started: Started, command: str, moment: str, rng: random.Random) -> str:
    """Wait until the command reaches `moment` (then a random moment more); what it reached."""
    pid = started.process.pid
    checks: dict[str, Callable[[], bool]] = {
        "imports": lambda: mapped(pid, "_pydantic_core"),
        "llama.cpp": lambda: mapped(pid, "libllama"),
        "announced": lambda: started.said(ANNOUNCEMENTS[command]),
        "any": lambda: handles_sigterm(pid),
    }
    check = checks[moment]
    deadline = time.monotonic() + 120
    while not check():
        if started.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the command never reached {moment!r}: {started.lines[-3:]}")
        time.sleep(0.002)
    delay = rng.uniform(0, 4.0) if moment == "any" else rng.uniform(0, 0.02)
    time.sleep(delay)
    return f"{moment}+{delay:.3f}s"


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_start_up_exits_with_one_line(
    command: str, signum: signal.Signals, tmp_path: Path
) -> None:
    rng = random.Random(f"{command}{int(signum)}")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_")}
    state = {"VERITY_TRACE_DB": str(tmp_path / "traces.db"), "XDG_STATE_HOME": str(tmp_path)}
    environment.update(server_env(**state))
    problems = []
    for round_ in range(ROUNDS * len(MOMENTS)):
        moment = MOMENTS[round_ % len(MOMENTS)]
        argv = [arg.format(port=free_port()) for arg in COMMANDS[command]]
        started = Started(argv, environment)
        reached = wait_for_moment(started, command, moment, rng)
        code = started.stop(signum)
        lines = started.lines
        print(f"{command} {signum.name} at {reached}: exit {code}, {lines[-1:]}")
        if code != 128 + signum:
            problems.append(f"{reached}: exit {code}: {lines[-3:]}")
        if lines[-1:] != [f"verity: interrupted by {signum.name}"]:
            problems.append(f"{reached}: stderr ends {lines[-3:]}")
        if any("Traceback" in line for line in lines):
            problems.append(f"{reached}: a traceback: {lines}")
    assert_no_leftovers()
    assert problems == []
