"""`verity run` starts its stdio MCP servers before its imports, and each is started only once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.agent.cli.test_cli_mcp import TIME_SERVER, verity
from tests.fixtures.processes import assert_no_leftovers, server_env


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def counted(tmp_path: Path, name: str, before: str = "") -> dict[str, object]:
    """A time server started through a shell that notes its start (and `before`'s end)."""
    notes = tmp_path / f"{name}.notes"
    script = f"echo started >> {notes}; {before}echo serving >> {notes}; exec {TIME_SERVER}"
    return {"command": "/bin/sh", "args": ["-c", script], "env": server_env()}


def notes(tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / f"{name}.notes"
    return path.read_text().split() if path.exists() else []


def write_config(tmp_path: Path, servers: Mapping[str, object]) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def run_with(config: Path, fake_server: str, *extra: str, command: str = "run") -> None:
    task: tuple[str, ...] = ()  # chat: stdin is empty
    trace: tuple[str, ...] = ("--no-log",)
    if command == "run":
        task = ("What time is it in UTC?",)
    elif command == "batch":  # it resumes from its trace
        tasks = config.with_name("tasks.jsonl")
        tasks.write_text('{"task": "What time is it in UTC?"}\n')
        task, trace = (str(tasks),), ("--trace-db", str(config.with_name("traces.db")))
    done = verity(
        command,
        *task,
        "--mcp-config",
        str(config),
        "--allow",
        "*",
        "--base-url",
        fake_server,
        "--api-model",
        "fake",
        *trace,
        *extra,
    )
    assert "Traceback" not in done.stderr
    assert "did not start" not in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["run", "chat", "batch"])
def test_a_server_started_ahead_is_the_one_the_command_uses(
    tmp_path: Path, fake_server: str, command: str
) -> None:
    config = write_config(tmp_path, {"time": counted(tmp_path, "time")})
    run_with(config, fake_server, command=command)
    # started once: by the command line, before its imports, and taken by the run's connection
    # (a process not taken would be stopped, and the connection would start a second one)
    assert notes(tmp_path, "time") == ["started", "serving"]


def test_servers_left_out_by_servers_are_not_started_ahead(
    tmp_path: Path, fake_server: str
) -> None:
    servers = {
        "a": counted(tmp_path, "a"),
        "b": counted(tmp_path, "b"),
        "off": counted(tmp_path, "off"),
    }
    servers["off"] = {**servers["off"], "disabled": True}
    config = write_config(tmp_path, servers)
    run_with(config, fake_server, "--servers", "a")
    assert notes(tmp_path, "a") == ["started", "serving"]
    assert notes(tmp_path, "b") == notes(tmp_path, "off") == []


def test_an_abbreviated_option_starts_nothing_ahead_and_the_run_starts_its_own(
    tmp_path: Path, fake_server: str
) -> None:
    config = write_config(tmp_path, {"a": counted(tmp_path, "a"), "b": counted(tmp_path, "b")})
    run_with(config, fake_server, "--serv", "a")  # argparse takes it for --servers
    assert notes(tmp_path, "a") == ["started", "serving"]
    assert notes(tmp_path, "b") == []


def test_a_server_started_ahead_of_a_mistyped_command_may_finish_starting_then_stops(
    tmp_path: Path,
) -> None:
    # `npx -y` installing the package: killed half-way, it leaves npm's cache broken
    config = write_config(tmp_path, {"slow": counted(tmp_path, "slow", before="sleep 5; ")})
    started = time.monotonic()
    done = verity("run", "Hi", "--mcp-config", str(config), "--no-such-option")
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-option" in done.stderr
    assert "Traceback" not in done.stderr
    # end of input reached it once it served, and it exited by itself: no kill half-way
    assert notes(tmp_path, "slow") == ["started", "serving"]
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("command", ["run", "chat", "batch"])
def test_the_servers_start_before_the_command_line_is_even_checked(
    tmp_path: Path, command: str
) -> None:
    """Started ahead, not by the run: a command line the parser then refuses started them."""
    config = write_config(tmp_path, {"a": counted(tmp_path, "a")})
    done = verity(command, "--mcp-config", str(config), "--no-such-option")
    assert done.returncode == 2
    assert notes(tmp_path, "a") == ["started", "serving"]
