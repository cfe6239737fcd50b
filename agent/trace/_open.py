"""Opening a trace database file without harming one that is not ours: created private, checked
before anything is written to it, then switched to WAL."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from verity.trace.migrations import APPLICATION_ID

__all__ = ["NotATraceDatabaseError", "open_connection"]


class NotATraceDatabaseError(Exception):
    """The file is another application's SQLite database."""


def open_connection(path: Path, *, timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode to the trace database at `path`, in WAL mode.

    Raises:
        NotATraceDatabaseError: the file is another application's SQLite database.
        sqlite3.DatabaseError: the file is not SQLite, is corrupt, or stays locked.
        OSError: the file or its directory cannot be created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _create_private(path)
    # autocommit: every write transaction is an explicit BEGIN IMMEDIATE ... COMMIT
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=False)
    try:
        _check_ours(conn, path)
        _use_wal(conn, timeout)
        # WAL + NORMAL: a commit survives a crash of the process; a power loss may drop the
        # last commits (never corrupts). FULL would flush the disk on every commit.
        conn.execute("pragma synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only: SQLite gives -wal and -shm its mode."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse another application's database; reads only, so nothing is written to it."""
    conn.execute("BEGIN")  # one consistent snapshot of the header and the schema
    try:
        (application_id,) = conn.execute("pragma application_id").fetchone()
        names = {name for (name,) in conn.execute("select name from sqlite_master")}
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    if application_id == APPLICATION_ID or not names:
        return
    if application_id == 0 and "_verity_migrations" in names:  # from before m005
        return
    shown = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
    raise NotATraceDatabaseError(
        f"{str(path)!r} is another application's SQLite database (tables: {shown}), "
        "not a Verity trace database; nothing was written to it"
    )


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL once; processes opening a new database at once retry while it is locked."""
    deadline = time.monotonic() + timeout
    while conn.execute("pragma journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("pragma journal_mode = wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
