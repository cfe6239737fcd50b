"""Who recorded a run and with what: the process (to tell a dead run from a live one), the
versions of Verity and llama.cpp, and the model file's sha256 (hashed once, then cached)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import platformdirs

from verity.tools._atomic import rewrite

__all__ = ["ProcessIdentity", "model_sha256", "versions"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, told apart from a later one that reuses its pid."""

    pid: int
    start: str | None
    """Boot id and start time (Linux `/proc`); None where the system does not say."""
    host: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process."""
        return cls(os.getpid(), _start_of(os.getpid()), socket.gethostname())

    def is_gone(self) -> bool | None:
        """Whether the process has ended; None when that cannot be told from this host."""
        if self.host != socket.gethostname():
            return None
        if self.start is not None:
            return _start_of(self.pid) != self.start
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # it exists, under another user
            return False
        return False


def _start_of(pid: int) -> str | None:
    """`boot-id/start-ticks` of a live process; None if it is gone, a zombie, or unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie has ended; only its parent has not reaped it
        return None
    return f"{boot}/{fields[19]}"


@cache
def versions() -> dict[str, str | None]:
    """The versions a run records: Verity, llama-cpp-python, Python, SQLite."""
    import sqlite3

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "verity": installed("verity-agent"),
        "llama_cpp": installed("llama-cpp-python"),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
    }


def model_sha256(path: str | Path, *, cache_file: Path | None = None) -> str | None:
    """The sha256 of a model file, hashed once per path, size and modification time.

    The cache is a small JSON file in the user cache directory, so a 20 GB model is not read
    again for each run or each trace database. None if the file cannot be read.
    """
    cache_file = cache_file or Path(platformdirs.user_cache_dir("verity")) / "model-sha256.json"
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    key = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    known = _read_cache(cache_file)
    if key in known:
        return known[key]
    try:
        with open(path, "rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None

    def merge(current: bytes | None) -> bytes:
        known = _parse_cache(current)  # with what other processes added meanwhile
        known[key] = digest
        return json.dumps(known).encode()

    try:
        rewrite(cache_file, merge)
    except OSError:
        pass  # an unwritable cache (or one locked too long) only costs a hash next time
    return digest


def _read_cache(cache_file: Path) -> dict[str, str]:
    try:
        return _parse_cache(cache_file.read_bytes())
    except OSError:
        return {}


def _parse_cache(data: bytes | None) -> dict[str, str]:
    try:
        loaded = json.loads(data or b"{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
