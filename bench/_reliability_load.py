"""Load held: concurrent trace writers, many HTTP clients on `verity serve --http`, and one
toolset fanning out to four stdio servers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client

from bench._reliability_common import ROOT, FakeModel, Row, bounded, env, start_http_serve, stop
from bench.serve_load import trace_reads
from tests.fixtures.processes import open_toolset
from verity.tools.mcp import StdioServer
from verity.tools.toolset import call_tool


def start_writer(database: Path) -> subprocess.Popen[str]:
    """`tests.fixtures.trace_writer runs`: records runs until killed, acking each write."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.trace_writer", "runs", str(database)],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def missing_acks(database: Path, acks: list[str]) -> list[str]:
    """The acknowledged writes (`ack RUN EVENT STEP` lines) the database does not hold."""
    missing = []
    with sqlite3.connect(database) as db:
        for line in acks:
            _, run_id, event, step = line.split()
            args: list[object] = [run_id, int(step)]
            if event == "run_start":
                sql, args = "select 1 from runs where id = ?", [run_id]
            elif event == "run_end":
                sql, args = "select 1 from runs where id = ? and status = 'completed'", [run_id]
            elif event == "model_end":
                sql = "select 1 from model_calls where run_id = ? and step = ?"
            else:
                sql = "select 1 from tool_calls where run_id = ? and step = ? and tool_call_id = ?"
                args.append(event.split(":", 1)[1])
            if db.execute(sql, args).fetchone() is None:
                missing.append(line)
    return missing


def killed_writers(database: Path, writers: int, seconds: float) -> tuple[list[str], list[int]]:
    """Run `writers` trace writers on one database for `seconds` once all have started, then
    SIGKILL them all; their acknowledged writes and their exit codes."""
    processes = [start_writer(database) for _ in range(writers)]
    for process in processes:
        assert process.stdout is not None
        process.stdout.readline()  # "opening": imports done, about to open the database
    time.sleep(seconds)
    for process in processes:
        process.send_signal(signal.SIGKILL)
    acks: list[str] = []
    codes = []
    for process in processes:
        out, _ = process.communicate(timeout=30)
        acks += [line for line in out.splitlines() if line.startswith("ack ")]
        codes.append(process.returncode)
    return acks, codes


def trace_writers(scratch: Path, *, fast: bool) -> Row:
    """Processes recording runs into one database at once, killed with SIGKILL mid-write."""
    writers, seconds = (2, 1.0) if fast else (4, 10.0)
    row = Row(
        "trace-writers",
        "load",
        f"{writers} processes recording runs into one trace "
        f"database for {seconds:.0f} s, then SIGKILL: acknowledged rows present",
    )
    database = scratch / "writers.db"
    acks, codes = killed_writers(database, writers, seconds)
    row.crashes = sum(code != -signal.SIGKILL for code in codes)
    missing = missing_acks(database, acks)
    row.ok, row.total, row.lost = len(acks) - len(missing), len(acks), len(missing)
    row.notes += missing[:3]
    return row


async def serve_clients(scratch: Path, *, fast: bool) -> Row:
    """Many MCP clients at once on `verity serve --http` (trace reads, a few runs)."""
    clients, calls = (10, 4) if fast else (50, 20)
    row = Row(
        "serve-http",
        "load",
        f"{clients} MCP clients x {calls} calls (get_run/list_runs) "
        "at once on `verity serve --http`, fake model: calls answered without error",
    )
    model = FakeModel()
    server, port = start_http_serve(model, scratch / "serve-load")
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with Client(url) as client:
            result = await client.call_tool("run_agent", {"task": "What is 2+3?"})
            run_id = (result.structured_content or {}).get("run_id", "none")
        with anyio.fail_after(300):
            _, errors = await trace_reads(url, str(run_id), clients, calls)
        row.ok, row.total = clients * calls - errors, clients * calls
    finally:
        row.crashes += int(server.poll() is not None)
        stop(server)
        model.close()
    return row


START_TIMEOUT = 60.0
"""Seconds a bench server may take to start: on a loaded machine importing `mcp` alone can take
longer than the 10 s default, and what is measured here is faults, not start-up time."""


def faulty(name: str, marks: Path | None = None) -> StdioServer:
    """`tests.fixtures.faulty_server` over stdio, named `name`."""
    extra = {"FAULTY_MARKS": str(marks)} if marks else {}
    return StdioServer(
        name=name,
        command=sys.executable,
        args=("-m", "tests.fixtures.faulty_server"),
        env=env(**extra),
        cwd=str(ROOT),
        connect_timeout=START_TIMEOUT,
    )


async def fan_out(scratch: Path, *, fast: bool) -> Row:
    """One toolset, four stdio servers, calls to all four at once."""
    rounds = 3 if fast else 100
    row = Row(
        "fan-out",
        "load",
        f"one toolset over 4 stdio servers, {rounds} rounds of 4 concurrent calls: right answers",
    )
    servers = [faulty(f"s{i}") for i in range(4)]
    with anyio.fail_after(120):
        async with open_toolset(servers, resource_tools=False) as toolset:
            for index in bounded(rounds, 90):
                answers: dict[str, str] = {}

                async def one(server: str, text: str, answers: dict[str, str] = answers) -> None:
                    result = await call_tool(
                        toolset, f"{server}__echo", {"text": text}, time_limit=30
                    )
                    answers[server] = "" if result.is_error else result.content

                async with anyio.create_task_group() as group:
                    for spec in servers:
                        group.start_soon(one, spec.name, f"{spec.name}-{index}")
                for spec in servers:
                    got = answers.get(spec.name)
                    row.tried(got == f"{spec.name}-{index}", f"{spec.name}: {got!r}")
    return row
