"""Rewriting a file safely: read-modify-write under a lock, then temp file + fsync + rename.

Every file Verity rewrites (the "always" approvals, the model-hash cache, the assembled embedded
model) goes through here, so a reader sees the old file or the new one and never a part of
either, a crash leaves one of the two, and two processes updating the same file at once both
keep their change. The lock is `filelock`'s (flock on POSIX, LockFileEx on Windows) on a
`<name>.lock` file beside the target: a lock on the target itself would be lost when the rename
replaces it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

__all__ = ["atomic_writer", "locked", "rewrite", "write_atomic"]

LOCK_TIMEOUT = 10.0
"""Seconds to wait for another process's lock on a small file (held for milliseconds)."""


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock of `path` (its `<name>.lock` file) for the block.

    Raises:
        TimeoutError: another process held the lock for `timeout` seconds (`filelock.Timeout`).
        OSError: the lock file cannot be created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path.with_name(path.name + ".lock"), timeout=timeout, mode=0o600)
    # the lock is held for milliseconds: poll often rather than filelock's default 50 ms
    with lock.acquire(poll_interval=0.002):
        yield


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A binary file that replaces `path` when the block ends without an exception.

    The data goes to a temporary file in the same directory (a rename is atomic only within one
    file system), is flushed to disk (so a crash right after the rename cannot leave an empty
    file), then renamed over `path`. On an exception the temporary file is removed and `path` is
    untouched. The directory is not flushed: after a power loss the rename may be undone, which
    leaves the previous file, never a broken one.

    Raises:
        OSError: the directory is not writable, or the disk is full.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically (see `atomic_writer`).

    Raises:
        OSError: the directory is not writable, or the disk is full.
    """
    with atomic_writer(path, mode=mode) as file:
        file.write(data)


def rewrite(
    path: Path,
    change: Callable[[bytes | None], bytes],
    *,
    mode: int = 0o600,
    timeout: float = LOCK_TIMEOUT,
) -> bytes:
    """Read `path`, pass its bytes (None when missing) to `change`, and write what it returns;
    all under the file's lock, so a concurrent `rewrite` sees this one's result. Returns what
    was written.

    Raises:
        TimeoutError: another process held the lock for `timeout` seconds.
        OSError: the file cannot be read or written.
        Exception: whatever `change` raises (nothing is written then).
    """
    with locked(path, timeout=timeout):
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        data = change(current)
        write_atomic(path, data, mode=mode)
    return data
