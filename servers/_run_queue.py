"""Up to N runs at once (1 on an in-process model); a bounded line waiting, busy past it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

__all__ = ["RunQueue", "ServerBusy"]


class ServerBusy(Exception):
    """The queue is full: the request was refused without waiting."""


class RunQueue:
    """Runs take one of `max_running` places, first come first served (a fair semaphore)."""

    def __init__(self, max_waiting: int, *, max_running: int = 1) -> None:
        """Run at most `max_running` at once; let at most `max_waiting` requests wait behind them.

        Raises:
            ValueError: `max_waiting` is negative or `max_running` below 1.
        """
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be 0 or more, not {max_waiting}")
        if max_running < 1:
            raise ValueError(f"max_running must be 1 or more, not {max_running}")
        self.max_waiting = max_waiting
        self.max_running = max_running
        self._places = anyio.Semaphore(max_running)
        self._waiting = 0
        self._running = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for a place now."""
        return self._waiting

    @property
    def running(self) -> int:
        """Runs holding a place now."""
        return self._running

    @asynccontextmanager
    async def turn(
        self, on_wait: Callable[[int], Awaitable[None]] | None = None
    ) -> AsyncIterator[None]:
        """Hold a place for one run; waits in line (cancellable), refuses when the line is full.

        `on_wait(ahead)` is told how many requests are ahead when this one has to wait.

        Raises:
            ServerBusy: every place is taken and `max_waiting` requests are already waiting.
        """
        if self._waiting == 0 and self._places.value > 0:
            self._places.acquire_nowait()  # a free place, taken before anyone else can look
        else:
            if self._waiting >= self.max_waiting:
                working = (
                    "one run is working"
                    if self.max_running == 1
                    else f"{self.max_running} runs are working, the most it runs at once,"
                )
                raise ServerBusy(
                    f"Verity is busy: {working} and {self._waiting} are waiting, the most this "
                    f"server queues (--max-queue {self.max_waiting}). Retry later."
                )
            self._waiting += 1
            try:
                if on_wait is not None:
                    await on_wait(self._waiting)
                await self._places.acquire()
            finally:
                self._waiting -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._places.release()
