"""A stdio server's stderr, copied into the server log; and where that log is.

Light on purpose (no MCP SDK): `_prestart` starts servers before the SDK is imported.
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import platformdirs

__all__ = ["StderrPump", "server_log", "server_log_path"]

_LOG_LINE = 16 * 2**10
"""Bytes of one stderr line kept in the server log; the rest of the line is counted, not kept."""
_LOG_TOTAL = 64 * 2**20
"""Bytes of stderr one server process may put in the log; later output is read and dropped."""
# C0 and C1 controls but tab, DEL, and the bidi embeddings, overrides and isolates.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def server_log_path() -> Path:
    """The file every MCP server's stderr goes to: `mcp-servers.log` in the user log dir."""
    return Path(platformdirs.user_log_dir("verity")) / "mcp-servers.log"


def server_log() -> TextIO:
    """Servers' stderr goes to a log file, not over the answer (`verity: ... see <file>`)."""
    path = server_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Servers log what they were asked (paths, queries, tokens): for the owner's eyes only.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with suppress(OSError):  # a log made 0644 by an older version, or on a filesystem without modes
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")


class StderrPump:
    """A server's stderr, copied line by line into the server log with a time and its name.

    Bounded whatever the server writes: a line is read in pieces of `_LOG_LINE` bytes and only
    its first piece is kept; after `_LOG_TOTAL` bytes the rest of the output is read and
    dropped. Control characters are written escaped, so reading the log runs none of them.
    """

    _lock = threading.Lock()

    def __init__(self, name: str, log: TextIO) -> None:
        self._name = name
        self._log = log
        self._read_end, self._write_end = os.pipe()
        self._logged = 0
        self._thread = threading.Thread(target=self._copy, daemon=True, name=f"mcp-log-{name}")

    def child_end(self) -> int:
        return self._write_end

    def spawned(self) -> None:
        """The child holds its own copy of the write end now; the thread ends at its EOF."""
        os.close(self._write_end)
        self._thread.start()

    def abandon(self) -> None:
        """The child was never started: close both ends; no thread runs."""
        os.close(self._write_end)
        os.close(self._read_end)

    def finish(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until everything the server wrote is in the log."""
        self._thread.join(timeout)

    def _copy(self) -> None:
        dropped = -1  # bytes of the current line not kept; -1 at the start of a line
        with os.fdopen(self._read_end, "rb") as pipe:
            while piece := pipe.readline(_LOG_LINE):
                ends = piece.endswith(b"\n")
                if dropped < 0:
                    self._write(piece.decode("utf-8", "replace").rstrip("\r\n"))
                    dropped = 0
                else:
                    dropped += len(piece) - ends
                if ends:
                    self._dropped(dropped)
                    dropped = -1
            self._dropped(dropped)

    def _dropped(self, size: int) -> None:
        if size > 0:
            self._write(f"[... {size} more bytes of this line not kept]")

    def _write(self, text: str) -> None:
        if self._logged > _LOG_TOTAL:
            return
        self._logged += len(text)
        if self._logged > _LOG_TOTAL:
            text = f"[stderr past {_LOG_TOTAL // 2**20} MiB from this process not kept]"
        stamp = datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")
        with self._lock, suppress(OSError, ValueError):
            self._log.write(f"{stamp} [{_escaped(self._name)}] {_escaped(text)}\n")
            self._log.flush()


def _escaped(text: str) -> str:
    """`text` with control characters (escape sequences included) written as `\\xNN` escapes."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
