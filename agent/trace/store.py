"""The SQLite trace database: opened safely, migrated on open, written one transaction at a time
(design D7)."""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio.to_thread
import sqlite_utils

from verity.errors import UserError
from verity.trace._open import NotATraceDatabaseError, open_connection
from verity.trace._provenance import ProcessIdentity
from verity.trace.migrations import SEARCHED, migrate

__all__ = ["TIMESTAMP_FORMAT", "TraceStore", "Writer", "index_run", "now", "parse_timestamp"]

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
"""How times are stored (UTC), cut to milliseconds."""

T = TypeVar("T")


class Writer(Protocol):
    """What a write gets to run its statements with: the connection, inside its transaction."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any:
        """Run one statement."""
        ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        """Run one statement once per parameter row."""
        ...


def now() -> str:
    """The current UTC time as the trace stores it: `2026-12-06 23:08:43.022`, the text form of
    SQLite's own date functions, so `started_at > datetime('now', '-1 hour')` compares right."""
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)[:-3]


def parse_timestamp(text: str) -> datetime:
    """A stored time as an aware UTC datetime (also the ISO 8601 form of before m014)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class TraceStore:
    """A trace database.

    Opening it creates the file readable by its owner only, refuses a file that is not a Verity
    trace database before writing anything to it, switches it to WAL with `synchronous=NORMAL`,
    applies any pending migrations, and marks `interrupted` the runs whose process is gone.

    Args:
        path: The database file; created, with its directory, when missing.
        timeout: Seconds a write waits for another process's lock before it fails.

    Raises:
        UserError: the path cannot be created, or holds something other than a Verity trace
            database (another application's SQLite file, a non-SQLite file, a corrupt one).
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.process = ProcessIdentity.current()
        self._lock = threading.Lock()
        self._checkpointer = _Checkpointer(self.path)
        self._commits = 0
        try:
            self.conn = open_connection(self.path, timeout=timeout)
        except (OSError, sqlite3.DatabaseError, NotATraceDatabaseError) as exc:
            raise _open_error(self.path, exc) from None
        try:
            migrate(self.conn)
            self.conn.execute("pragma busy_timeout = 0")  # from here on, `transaction` waits
            # a checkpoint copies the WAL into the database and flushes it to disk: done in a
            # background thread on its own connection, so no commit of a run waits for one
            self.conn.execute("pragma wal_autocheckpoint = 0")
            self.mark_interrupted()
        except (OSError, sqlite3.DatabaseError) as exc:
            self.conn.close()
            raise _open_error(self.path, exc) from None
        self.db = sqlite_utils.Database(self.conn)

    def close(self) -> None:
        """Close the connection (the last one to the database leaves it checkpointed)."""
        self._checkpointer.close()
        with self._lock:
            self.conn.close()

    def transaction(
        self, function: Callable[[Writer], T], *, lock_timeout: float | None = None
    ) -> T:
        """Run `function` in one `BEGIN IMMEDIATE` transaction and commit it (blocking: waits
        up to `lock_timeout`, the store's `timeout` by default, for another process's write
        lock).

        Text that SQLite cannot store (lone surrogates, from a non-UTF-8 command line) is
        stored with U+FFFD in their place rather than lose the row.

        Raises:
            sqlite3.OperationalError: the lock stayed taken past `timeout` ("database is
                locked"), or the write failed.
        """
        deadline = time.monotonic() + (self.timeout if lock_timeout is None else lock_timeout)
        pause = 0.001
        while True:
            self._lock.acquire()
            if self._begin():
                return self._continue(function)  # releases the lock
            self._lock.release()
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError("database is locked")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def write(
        self, function: Callable[[Writer], T], *, lock_timeout: float | None = None
    ) -> T:
        """`transaction`, without blocking the event loop on another process's lock.

        When the write lock is free the transaction runs at once (tens of microseconds: a hop
        to a worker thread would cost more than the write); otherwise it waits for the lock in
        a worker thread.
        """
        if self._lock.acquire(blocking=False):
            if self._begin():
                return self._continue(function)  # releases the lock
            self._lock.release()
        return await anyio.to_thread.run_sync(
            functools.partial(self.transaction, function, lock_timeout=lock_timeout)
        )

    def _begin(self) -> bool:
        """BEGIN IMMEDIATE, or False while another connection holds the write lock.

        The connection's busy timeout is 0 once open: waiting is `transaction`'s loop, never
        SQLite's, so the event loop's attempt never blocks.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            self._lock.release()
            raise
        except BaseException:
            self._lock.release()
            raise
        return True

    def _continue(self, function: Callable[[Writer], T]) -> T:
        """Run `function` in the transaction just begun, commit, and release the lock."""
        conn = self.conn
        try:
            try:
                result = function(conn)
            except UnicodeEncodeError:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                result = function(_Replacing(conn))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._lock.release()
        self._commits += 1
        if self._commits % _CHECKPOINT_EVERY == 0:
            self._checkpointer.request()
        return result

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query, as dicts.

        Raises:
            sqlite3.OperationalError: the database stayed locked past `timeout` (readers wait
                only while another connection recovers or resets the WAL), or the query failed.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with self._lock:
                    cursor = self.conn.execute(sql, parameters)
                    names = [d[0] for d in cursor.description]
                    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.005)

    def mark_interrupted(self) -> list[str]:
        """Mark `interrupted` each `running` run whose recording process has ended; their ids.

        A run recorded on another host, or by a process that cannot be told apart from a
        later one, is left alone.
        """
        gone = []
        for row in self.read("select id, pid, process, host from runs where status = 'running'"):
            if row["pid"] is None:
                continue
            recorder = ProcessIdentity(row["pid"], row["process"], row["host"] or "")
            if recorder.is_gone():
                gone.append(row["id"])
        if gone:
            error = "The process recording the run ended before the run did."

            def mark(w: Writer) -> None:
                w.executemany(
                    "update runs set status = 'interrupted', error = ?, ended_at = ? "
                    "where id = ? and status = 'running'",
                    [(error, now(), run_id) for run_id in gone],
                )
                for run_id in gone:
                    index_run(w, run_id)

            self.transaction(mark)
        return gone

    def runs(self, *, limit: int = 20, samples: bool = False) -> list[dict[str, Any]]:
        """The latest runs, newest first; consensus samples' own runs only with `samples`."""
        where = "" if samples else "where parent_run_id is null"
        return self.read(f"select * from runs {where} order by started_at desc limit ?", [limit])

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its steps, model calls, tool calls, verdicts, consensus samples,
        messages and approval decisions. None if the run is unknown."""
        rows = self.read("select * from runs where id = ?", [run_id])
        if not rows:
            return None
        record = rows[0]
        for table in (
            "steps",
            "model_calls",
            "tool_calls",
            "verdicts",
            "verdict_samples",
            "messages",
            "approvals",
            "tool_grammars",
        ):
            sql = f"select * from {table} where run_id = ? order by id"
            record[table] = self.read(sql, [run_id])
        return record

    def content(self, content_hash: str | None) -> str | None:
        """A text stored once by its sha256 (a system prompt, a tool list); None if unknown."""
        if content_hash is None:
            return None
        rows = self.read("select text from contents where hash = ?", [content_hash])
        return str(rows[0]["text"]) if rows else None


def index_run(w: Writer, run_id: str) -> None:
    """Add a finished run's texts to the full-text indexes (once, when it ends)."""
    for table, columns in SEARCHED.items():
        names = ", ".join(columns)
        key = "id" if table == "runs" else "run_id"
        w.execute(
            f"insert into {table}_fts (rowid, {names}) select rowid, {names} from {table} "
            f"where {key} = ?",
            (run_id,),
        )


_CHECKPOINT_EVERY = 200
"""Commits between checkpoints: a few hundred WAL pages, like SQLite's own default of 1000."""


class _Checkpointer:
    """Copies the WAL back into the database in a daemon thread, on its own connection."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="verity-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("pragma wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass  # busy or failing: the next request tries again, the last close too
        finally:
            conn.close()


class _Replacing:
    """A writer that stores unencodable text with U+FFFD instead."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self._conn.execute(sql, _replaced(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        return self._conn.executemany(sql, [_replaced(row) for row in parameters])


def _replaced(row: Sequence[Any]) -> list[Any]:
    return [v.encode("utf-8", "replace").decode("utf-8") if isinstance(v, str) else v for v in row]


def _open_error(path: Path, exc: Exception) -> UserError:
    text = str(exc)
    if isinstance(exc, NotATraceDatabaseError):
        problem = text
    elif "file is not a database" in text:
        problem = f"{str(path)!r} is not a SQLite database (so not a Verity trace database)"
    elif "malformed" in text:
        problem = f"The trace database {str(path)!r} is corrupt ({text}); move it aside"
    else:
        problem = f"Cannot open the trace database {str(path)!r}: {text}"
    return UserError(
        f"{problem}. Choose another path with --trace-db or VERITY_TRACE_DB.", field="trace_db"
    )


def __getattr__(name: str) -> Any:
    """`TraceRecorder` from its former home (it lives in `verity.trace.recorder` now)."""
    if name == "TraceRecorder":
        from verity.trace.recorder import TraceRecorder

        return TraceRecorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
