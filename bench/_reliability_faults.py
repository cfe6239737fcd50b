"""Faults survived: killed writers, a full disk, servers that die, ignore SIGTERM, hang or restart,
cancellations racing answers, and tool lists that change mid-session."""

from __future__ import annotations

import functools
import random
import resource
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from bench._reliability_common import ROOT, FakeModel, Row, bounded, env
from bench._reliability_load import START_TIMEOUT, faulty, killed_writers, missing_acks
from tests.fixtures.processes import (
    free_port,
    leftover_processes,
    open_toolset,
    start_http_fixture,
    stop,
)
from verity import TraceStore
from verity.tools.mcp import HTTPServer, StdioServer
from verity.tools.toolset import call_tool


def kill9(scratch: Path, *, fast: bool) -> Row:
    """A trace writer killed with SIGKILL at a random moment: the database reopens, the run it
    was recording shows `interrupted`, and every acknowledged row is there."""
    tries = 1 if fast else 20
    row = Row(
        "kill-9",
        "faults",
        "a process recording runs killed with SIGKILL at a random "
        "moment: trace reopens, its run shows interrupted, acknowledged rows present",
    )
    chooser = random.Random(9)
    for index in bounded(tries, 120):
        database = scratch / f"kill9-{index}.db"
        acks, codes = killed_writers(database, 1, chooser.uniform(0.1, 1.5))
        row.crashes += int(codes != [-signal.SIGKILL])
        try:
            store = TraceStore(database)
            statuses = {r["status"] for r in store.read("select status from runs")}
            store.close()
        except Exception as exc:  # noqa: BLE001 - a bench counts failures, it does not stop
            row.tried(False, f"did not reopen: {exc}")
            continue
        missing = missing_acks(database, acks)
        row.lost += len(missing)
        # killed mid-run (its last acknowledged write is not a run's end): that run must show
        # `interrupted`; killed between runs there may be none
        mid_run = bool(acks) and acks[-1].split()[2] != "run_end"
        interrupted = "interrupted" in statuses or not mid_run
        good = not missing and "running" not in statuses and interrupted
        row.tried(good, f"statuses {sorted(statuses)}, {len(missing)} acked rows missing")
    return row


def _limit_file_size(size: int) -> None:
    # a child's RLIMIT_FSIZE is a full disk for every file it writes; SIGXFSZ ignored, so a
    # write past it fails with EFBIG (SQLite: "database or disk is full") instead of a kill
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def disk_full(scratch: Path, *, fast: bool) -> Row:
    """`verity run` whose trace database cannot grow (RLIMIT_FSIZE) at various points."""
    tries = 1 if fast else 12
    row = Row(
        "disk-full",
        "faults",
        "`verity run` (fake model) whose trace database hits a "
        "full disk (RLIMIT_FSIZE) at varying points: answer printed, exit 0 or 6 with a "
        "warning, no traceback, database reopens intact, run never left `running`",
    )
    model = FakeModel()
    try:
        for index in bounded(tries, 120):
            database = scratch / f"full-{index}.db"
            TraceStore(database).close()
            room = database.stat().st_size + (index + 2) * 8192
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "verity",
                    "run",
                    "What is 2+3?",
                    "--trace-db",
                    str(database),
                    *model.options,
                ],
                cwd=ROOT,
                env=env(XDG_CONFIG_HOME=str(scratch / "config")),
                capture_output=True,
                text=True,
                timeout=120,
                preexec_fn=functools.partial(_limit_file_size, room),
            )
            row.crashes += int("Traceback" in done.stderr or done.returncode < 0)
            try:
                store = TraceStore(database)
                statuses = [r["status"] for r in store.read("select status from runs")]
                (check,) = store.conn.execute("pragma integrity_check").fetchone()
                store.close()
            except Exception as exc:  # noqa: BLE001
                row.tried(False, f"did not reopen: {exc}")
                continue
            answered = done.returncode in (0, 6) and "The answer is 5." in done.stdout
            good = answered and check == "ok" and "running" not in statuses
            row.tried(good, f"rc {done.returncode}, {statuses}, {done.stderr.strip()[-200:]}")
    finally:
        model.close()
    return row


async def server_dies(scratch: Path, *, fast: bool) -> Row:
    """A stdio server that exits mid-call: an error result, then the restarted server answers."""
    tries = 1 if fast else 20
    row = Row(
        "server-dies",
        "faults",
        "a stdio server exits mid-call: the call returns an "
        "error result and the next call reaches the restarted server",
    )
    # a session restarts a server 3 times at most (then leaves it down): a new session each 3
    for _ in bounded(-(-tries // 3), 300):
        with anyio.fail_after(120):
            async with open_toolset([faulty("f")], resource_tools=False) as toolset:
                for _ in range(min(3, tries - row.total)):
                    crashed = await call_tool(toolset, "f__crash", {}, time_limit=20)
                    again = await call_tool(toolset, "f__echo", {"text": "back"}, time_limit=20)
                    row.tried(crashed.is_error and again.content == "back", again.content[:200])
    return row


async def ignores_sigterm(scratch: Path, *, fast: bool) -> Row:
    """A server with a child that ignores SIGTERM: nothing outlives closing the toolset."""
    tries = 1 if fast else 10
    row = Row(
        "ignores-sigterm",
        "faults",
        "a stdio server whose child ignores SIGTERM: after closing, no process of it is left",
    )
    script = (
        f"trap '' TERM; {sys.executable} -c 'import signal,time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)' & "
        f"exec {sys.executable} -m tests.fixtures.faulty_server"
    )
    wrapper = StdioServer(
        name="w",
        command="/bin/sh",
        args=("-c", script),
        env=env(),
        cwd=str(ROOT),
        kill_grace=0.5,
        connect_timeout=START_TIMEOUT,
    )
    for _ in bounded(tries, 120):
        with anyio.fail_after(30):
            async with open_toolset([wrapper], resource_tools=False) as toolset:
                result = await call_tool(toolset, "w__echo", {"text": "hi"}, time_limit=10)
        for _ in range(60):  # 3 s for the kill to land
            if not (left := leftover_processes()):
                break
            await anyio.sleep(0.05)
        row.tried(result.content == "hi" and not left, f"left: {left}")
    return row


async def server_hangs(scratch: Path, *, fast: bool) -> Row:
    """A tool that never answers: the call times out as an error, the server hears the cancel,
    and the next call works."""
    tries = 1 if fast else 10
    row = Row(
        "server-hangs",
        "faults",
        "a tool that never answers: an error result at the "
        "time limit, the server told to cancel, the next call answered",
    )
    marks = scratch / "hang-marks"
    marks.mkdir(exist_ok=True)
    with anyio.fail_after(120):
        async with open_toolset([faulty("f", marks)], resource_tools=False) as toolset:
            for _ in bounded(tries, 100):
                (marks / "hang-cancelled").unlink(missing_ok=True)
                hung = await call_tool(toolset, "f__hang", {}, time_limit=1)
                again = await call_tool(toolset, "f__echo", {"text": "ok"}, time_limit=20)
                told = await appears(marks / "hang-cancelled", 5)
                good = hung.is_error and again.content == "ok" and told
                row.tried(good, f"error {hung.is_error}, cancel seen {told}, {again.content!r}")
    return row


async def http_restart(scratch: Path, *, fast: bool) -> Row:
    """An HTTP MCP server killed and started again on its port between two calls."""
    tries = 1 if fast else 10
    row = Row(
        "http-restart",
        "faults",
        "an HTTP MCP server killed and restarted on its port "
        "mid-session: a later call (3 tries at most) is answered",
    )
    port = free_port()
    process = start_http_fixture(port)
    spec = HTTPServer(
        name="h", url=f"http://127.0.0.1:{port}/mcp", timeout=10, connect_timeout=START_TIMEOUT
    )
    try:
        with anyio.fail_after(240):
            async with open_toolset([spec], resource_tools=False) as toolset:
                for _ in bounded(tries, 200):
                    first = await call_tool(toolset, "h__echo", {"text": "a"}, time_limit=15)
                    stop(process)
                    process = start_http_fixture(port)
                    answers = []
                    for _attempt in range(3):
                        again = await call_tool(toolset, "h__echo", {"text": "b"}, time_limit=15)
                        answers.append(again.content[:120])
                        if again.content == "b":
                            break
                    row.tried(first.content == "a" and answers[-1] == "b", repr(answers))
    finally:
        stop(process)
    return row


async def cancel_race(scratch: Path, *, fast: bool) -> Row:
    """Calls cancelled at random moments around their answer: the next call still works."""
    tries = 10 if fast else 300
    row = Row(
        "cancel-race",
        "faults",
        "calls cancelled 0-20 ms after they start (racing the "
        "answer): no exception escapes and the next call is answered",
    )
    chooser = random.Random(25)
    with anyio.fail_after(240):
        async with open_toolset([faulty("f")], resource_tools=False) as toolset:
            for index in bounded(tries, 200):
                try:
                    with anyio.move_on_after(chooser.uniform(0, 0.02)):
                        await call_tool(
                            toolset, "f__slow", {"steps": 1, "delay": 0.005}, time_limit=20
                        )
                    again = await call_tool(toolset, "f__echo", {"text": str(index)}, time_limit=20)
                except Exception as exc:  # noqa: BLE001
                    row.crashes += 1
                    row.tried(False, f"{type(exc).__name__}: {exc}")
                    continue
                row.tried(again.content == str(index), again.content[:200])
    return row


async def tools_changed(scratch: Path, *, fast: bool) -> Row:
    """A server adds a tool and announces it mid-session: the next listing offers it."""
    tries = 1 if fast else 10
    row = Row(
        "tools-changed",
        "faults",
        "a server adds a tool mid-session and announces it: "
        "the next listing offers it, and calling it works",
    )
    for _ in bounded(tries, 120):
        with anyio.fail_after(60):
            async with open_toolset([faulty("f")], resource_tools=False) as toolset:
                before = {s.name for s in await toolset.list_tools()}
                await call_tool(toolset, "f__grow", {}, time_limit=20)
                after: set[str] = set()
                for _ in range(100):  # 10 s for the change to be seen
                    after = {s.name for s in await toolset.list_tools()}
                    if "f__added" in after:
                        break
                    await anyio.sleep(0.1)
                added = await call_tool(toolset, "f__added", {"n": 1}, time_limit=20)
        row.tried(
            "f__added" not in before and "f__added" in after and added.content == "2",
            f"after: {sorted(after)}, call: {added.content[:100]!r}",
        )
    return row


async def appears(path: Path, seconds: float) -> bool:
    """Whether `path` exists within `seconds` (a server's mark has no event to await)."""
    mark = anyio.Path(path)
    for _ in range(int(seconds / 0.02)):
        if await mark.exists():
            return True
        await anyio.sleep(0.02)
    return await mark.exists()
