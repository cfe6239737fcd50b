"""The trace database through the `verity` command, run as a user would: failed trace writes
never lose the answer; bad files give one line, never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.cli.test_cli import verity
from tests.conftest import PROJECT_ROOT
from verity import TraceStore

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(40)
"""


@pytest.mark.slow
def test_a_trace_write_blocked_by_another_process_keeps_the_answer_and_exits_5(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    TraceStore(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        done = verity("run", "What is 21 * 2?", "--quiet", trace_db=db)
    finally:
        holder.kill()
        holder.communicate()
    assert done.returncode == 6, done.stderr
    assert "42" in done.stdout
    assert "Traceback" not in done.stderr
    [warning] = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warning.startswith("verity: warning: the trace of run ")
    # the run's start waited the store's 30 s and failed; so did the rest, or the end got in
    assert f"in {db} is incomplete: OperationalError: database is locked; not recorded: run " in (
        warning
    )
    assert "'s start, step 1's messages, step 1's model call" in warning


@pytest.mark.slow
def test_a_task_that_is_not_utf8_is_answered_and_traced_with_replacement_characters(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    environment = {**os.environ, "VERITY_TRACE_DB": str(db)}
    environment.pop("VERITY_MODEL", None)
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"verity", b"run", b"What is 21 * 2? \xff", b"--quiet"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("select task, status from runs").fetchall() == [
            ("What is 21 * 2? \ufffd", "completed")
        ]


def test_logs_on_a_corrupt_database_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    TraceStore(db).close()
    with open(db, "r+b") as file:
        file.seek(100)  # the schema table's page, past the file header
        file.write(b"\xde\xad\xbe\xef" * 200)
    done = verity("logs", trace_db=db)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"verity: error: The trace database {str(db)!r} is corrupt (")
    assert line.endswith("move it aside. Choose another path with --trace-db or VERITY_TRACE_DB.")


def test_logs_refuses_another_applications_database_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table users (name text)")
    conn.close()
    before = db.read_bytes()
    done = verity("logs", trace_db=db)
    assert done.returncode == 2
    assert done.stderr == (
        f"verity: error: {str(db)!r} is another application's SQLite database (tables: users), "
        "not a Verity trace database; nothing was written to it. Choose another path with "
        "--trace-db or VERITY_TRACE_DB.\n"
    )
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
