"""What the reliability scenarios share: their result row, bounded loops, and the processes they
start (a fake model server, `verity serve` over stdio or HTTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.processes import free_port, server_env, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One scenario's figures: `ok` of `total` tries went as they must."""

    scenario: str
    section: str
    what: str
    ok: int = 0
    total: int = 0
    crashes: int = 0
    """Verity processes that died, or exceptions that escaped Verity's API."""
    lost: int = 0
    """Acknowledged trace rows (or approvals) missing afterwards."""
    unapproved: int = 0
    """Destructive tool calls that ran without anyone's approval."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def tried(self, good: bool, note: str | None = None) -> None:
        """Count one try; keep the first few notes of failed ones."""
        self.total += 1
        self.ok += int(good)
        if not good and note and len(self.notes) < 3:
            self.notes.append(note)


def bounded(count: int, seconds: float) -> Iterator[int]:
    """range(count), stopping early once `seconds` have passed: every loop has both bounds."""
    deadline = time.monotonic() + seconds
    for index in range(count):
        if time.monotonic() > deadline:
            return
        yield index


def env(**extra: str) -> dict[str, str]:
    """The environment of a process the bench starts: tagged, the project importable."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_")}
    environment.update(server_env(**extra))
    environment["PYTHONPATH"] = str(ROOT)
    return environment


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Kill a process the bench started (its whole session) and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)


class FakeModel:
    """`tests.fixtures.fake_openai` on a free loopback port, for as long as the block lasts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.fake_openai", str(self.port)],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, self.process)

    @property
    def options(self) -> list[str]:
        """The `verity` options that point a run or a server at this model."""
        return ["--base-url", f"http://127.0.0.1:{self.port}/v1", "--api-model", "fake"]

    def close(self) -> None:
        stop(self.process)


def serve_command(model: FakeModel, home: Path, *extra: str) -> list[str]:
    """`verity serve` on the fake model, its trace and config under `home`."""
    return [
        sys.executable,
        "-m",
        "verity",
        "serve",
        "--trace-db",
        str(home / "traces.db"),
        *model.options,
        *extra,
    ]


def serve_env(home: Path, **extra: str) -> dict[str, str]:
    """A served Verity's environment: config and logs under `home`."""
    return env(XDG_CONFIG_HOME=str(home / "config"), XDG_STATE_HOME=str(home / "state"), **extra)


def start_http_serve(
    model: FakeModel, home: Path, *extra: str, token: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """`verity serve --http` on a free port; returns once it listens."""
    port = free_port()
    variables = {"VERITY_SERVE_TOKEN": token} if token else {}
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        serve_command(model, home, "--http", "--port", str(port), *extra),
        cwd=ROOT,
        env=serve_env(home, **variables),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    wait_for_port(port, process, timeout=60)
    return process, port
