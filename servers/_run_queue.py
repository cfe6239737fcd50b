"""One run at a time on the shared model; a bounded line of waiting requests, busy past it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

__all__ = ["RunQueue", "ServerBusy"]


class ServerBusy(Exception):
    """The queue is full: the request was refused without waiting."""


class RunQueue:
    """Runs take the model one at a time, first come first served (anyio's lock is fair)."""

    def __init__(self, max_waiting: int) -> None:
        """Let at most `max_waiting` requests wait behind the running one.

        Raises:
            ValueError: `max_waiting` is negative.
        """
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be 0 or more, not {max_waiting}")
        self.max_waiting = max_waiting
        self._lock = anyio.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for the model now."""
        return self._waiting

    @property
    def running(self) -> bool:
        """Whether a run holds the model now."""
        return self._lock.locked()

    @asynccontextmanager
    async def turn(
        self, on_wait: Callable[[int], Awaitable[None]] | None = None
    ) -> AsyncIterator[None]:
        """Hold the model for one run; waits in line (cancellable), refuses when the line is full.

        `on_wait(ahead)` is told how many requests are ahead when this one has to wait.

        Raises:
            ServerBusy: `max_waiting` requests are already waiting.
        """
        busy = self._lock.locked() or self._waiting > 0
        if busy and self._waiting >= self.max_waiting:
            raise ServerBusy(
                f"Verity is busy: one run is working and {self._waiting} are waiting, the "
                f"most this server queues (--max-queue {self.max_waiting}). Retry later."
            )
        self._waiting += 1
        try:
            if busy and on_wait is not None:
                await on_wait(self._waiting)
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()
