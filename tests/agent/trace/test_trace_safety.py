"""The trace store under crashes and concurrency: kill -9 at any moment, many processes opening a
new database at once, dead runs marked, foreign files left untouched, private files."""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.trace_writer import open_rounds
from verity import RunStarted, TraceRecorder, TraceStore, UserError
from verity.trace.migrations import MIGRATIONS

WRITER = [sys.executable, "-m", "tests.fixtures.trace_writer"]
ENV = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}


def writer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WRITER, *args], cwd=PROJECT_ROOT, env=ENV, stdout=subprocess.PIPE, text=True
    )


def kill(process: subprocess.Popen[str]) -> list[str]:
    """SIGKILL the process; the lines it printed."""
    process.kill()
    out, _ = process.communicate(timeout=30)
    return out.splitlines()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("pragma integrity_check").fetchone()[0])


@pytest.mark.parametrize("name", [m.__name__ for m in MIGRATIONS])
def test_a_process_killed_inside_a_migration_leaves_a_database_the_next_open_completes(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "t.db"
    stalled = writer("stall", str(path), name)
    assert stalled.stdout is not None
    assert stalled.stdout.readline().strip() == f"inside {name}"
    kill(stalled)
    store = TraceStore(path)
    applied = [r["name"] for r in store.read("select name from _verity_migrations order by rowid")]
    assert applied == [m.__name__ for m in MIGRATIONS]
    store.close()
    assert integrity(path) == "ok"


def test_kill_9_at_random_moments_keeps_every_acknowledged_row_and_marks_the_run_interrupted(
    tmp_path: Path,
) -> None:
    rng = random.Random(13)
    path = tmp_path / "t.db"
    acknowledged: list[list[str]] = []
    interrupted = 0
    for round_ in range(20):
        fresh = round_ % 4 == 0
        if fresh:  # a new database: the kill may land in its first migrations
            path = tmp_path / f"t{round_}.db"
        process = writer("runs", str(path))
        assert process.stdout is not None
        assert process.stdout.readline() == "opening\n"
        time.sleep(rng.uniform(0.0, 0.05 if fresh else 0.4))
        acknowledged = [line.split() for line in kill(process) if line.startswith("ack ")]
        assert integrity(path) == "ok"
        if not path.exists() or not acknowledged:
            continue
        store = TraceStore(path)  # marks the killed process's run interrupted
        for _, run_id, event, step in acknowledged:
            assert _recorded(store, run_id, event, int(step)), (round_, run_id, event, step)
        unfinished = [a[1] for a in acknowledged if a[2] == "run_start"]
        ended = {a[1] for a in acknowledged if a[2] == "run_end"}
        for run_id in unfinished:
            [status] = [
                r["status"] for r in store.read("select status from runs where id = ?", [run_id])
            ]
            # the kill may fall between a run's last commit and its acknowledgement
            assert (
                status == "completed" if run_id in ended else status in ("interrupted", "completed")
            )
            interrupted += status == "interrupted"
        assert store.read("select count(*) as n from runs where status = 'running'")[0]["n"] == 0
        store.close()
    assert interrupted >= 10  # most rounds killed a run in flight
    print(f"kill -9: 20 rounds, {interrupted} runs killed in flight, all acknowledged rows kept")


def _recorded(store: TraceStore, run_id: str, event: str, step: int) -> bool:
    if event in ("run_start", "run_end"):
        rows = store.read("select status from runs where id = ?", [run_id])
        return bool(rows) and (event == "run_start" or rows[0]["status"] == "completed")
    if event == "model_end":
        sql = "select 1 from model_calls where run_id = ? and step = ?"
        return bool(store.read(sql, [run_id, step]))
    call_id = event.split(":")[1]
    sql = "select 1 from tool_calls where run_id = ? and step = ? and tool_call_id = ?"
    return bool(store.read(sql, [run_id, step, call_id]))


def test_eight_processes_opening_a_new_database_at_once_fifty_times_never_fail(
    tmp_path: Path,
) -> None:
    processes, rounds = 8, 50
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    failures = context.Queue()
    workers = [
        context.Process(target=open_rounds, args=(str(tmp_path), rounds, barrier, i, failures))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    found = []
    while not failures.empty():
        found.append(failures.get())
    assert found == []
    assert [w.exitcode for w in workers] == [0] * processes
    for round_ in range(rounds):
        with sqlite3.connect(tmp_path / f"round{round_}.db") as db:
            assert db.execute("select count(*) from runs").fetchone() == (processes,)
            names = [n for (n,) in db.execute("select name from _verity_migrations")]
        assert names == [m.__name__ for m in MIGRATIONS]


def test_a_running_run_is_interrupted_only_when_its_process_is_gone(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    me = store.process
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [
        ("alive", me.pid, me.start, me.host),
        ("dead", int(dead.stdout), me.start, me.host),
        # this very pid, but started at another time: a reused pid, not this process
        ("reused-pid", me.pid, "another-boot/1", me.host),
        ("elsewhere", 1, "boot/1", "another-host"),
    ]
    store.transaction(
        lambda w: w.executemany(
            "insert into runs (id, task, status, pid, process, host) "
            "values (?, 't', 'running', ?, ?, ?)",
            rows,
        )
    )
    store.close()
    reopened = TraceStore(tmp_path / "t.db")
    statuses = {
        r["id"]: (r["status"], r["error"])
        for r in reopened.read("select id, status, error from runs")
    }
    gone = ("interrupted", "The process recording the run ended before the run did.")
    assert statuses == {
        "alive": ("running", None),
        "dead": gone,
        "reused-pid": gone,
        "elsewhere": ("running", None),
    }
    reopened.close()


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_another_applications_sqlite_file_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as db:
        db.execute("create table notes (id integer primary key, text text)")
        db.execute("insert into notes (text) values ('keep me')")
    db.close()
    before = _snapshot(tmp_path)
    with pytest.raises(UserError) as caught:
        TraceStore(path)
    assert str(caught.value) == (
        f"{str(path)!r} is another application's SQLite database (tables: notes), not a "
        "Verity trace database; nothing was written to it. Choose another path with "
        "--trace-db or VERITY_TRACE_DB."
    )
    assert _snapshot(tmp_path) == before  # same bytes, no -wal or -shm beside it


def test_a_file_that_is_not_sqlite_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"not a database at all\n" * 300)
    before = _snapshot(tmp_path)
    with pytest.raises(UserError) as caught:
        TraceStore(path)
    assert "is not a SQLite database" in str(caught.value)
    assert _snapshot(tmp_path) == before


def test_the_database_and_its_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = TraceStore(tmp_path / "t.db")
    finally:
        os.umask(old)
    recorder = TraceRecorder(store)
    anyio.run(recorder.on_run_start, RunStarted(run_id="r1", task="t", model="m"))
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"t.db": 0o600, "t.db-wal": 0o600, "t.db-shm": 0o600}
    store.close()
