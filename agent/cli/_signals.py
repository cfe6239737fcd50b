"""SIGINT and SIGTERM on the command line: a run in progress is cancelled, never torn down.

Inside `run_interruptibly` a signal cancels the run: it records itself `cancelled`, generation
stops, MCP servers are closed, and only then does `Interrupted` reach `main()`, which prints one
line and exits 130 (SIGINT) or 143 (SIGTERM). Outside it the first signal raises `Interrupted`
where the main thread is. Signals that arrive while a run shuts down are not acted on again: a
second Ctrl-C must not pull native memory from under llama.cpp.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TypeVar

import anyio

__all__ = ["Interrupted", "install", "run_interruptibly"]

_T = TypeVar("_T")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The command was stopped by a signal; raised once everything it started has shut down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as shells report it: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    @property
    def name(self) -> str:
        """SIGINT or SIGTERM."""
        return signal.Signals(self.signum).name


class _State:
    received: int | None = None
    in_event_loop = False
    wakeup: socket.socket | None = None


_state = _State()


def _handle(signum: int, _frame: FrameType | None) -> None:
    first = _state.received is None
    if first:
        _state.received = signum
    if _state.wakeup is not None:
        try:
            _state.wakeup.send(b"\0")
        except OSError:  # the buffer is full of earlier wake-ups: one is enough
            pass
    elif not _state.in_event_loop and first:
        if _importing(_frame):
            # An exception raised inside a module's import can break a native extension's
            # initialisation (pydantic_core panics); while importing, nothing is open yet.
            os.write(2, f"verity: interrupted by {signal.Signals(signum).name}\n".encode())
            os._exit(128 + signum)
        raise Interrupted(signum)


def _importing(frame: FrameType | None) -> bool:
    """Whether the main thread is inside an import (importlib's frames are on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib."):
            return True
        frame = frame.f_back
    return False


def install() -> None:
    """Handle SIGINT and SIGTERM as described above, from now on in this process."""
    _state.received = None
    for signum in _SIGNALS:
        signal.signal(signum, _handle)


def run_interruptibly(main: Callable[[], Awaitable[_T]]) -> _T:
    """`anyio.run(main)`, cancelled by SIGINT or SIGTERM (after `install()`).

    Raises:
        Interrupted: a signal arrived; `main` was cancelled and has returned.
    """
    _state.in_event_loop = True
    try:
        outcome = anyio.run(_cancelled_by_signals, main)
    except Exception:
        if _state.received is None:
            raise
        outcome = []  # what failed while shutting down matters less than why it shut down
    finally:
        _state.in_event_loop = False
    if _state.received is not None:
        raise Interrupted(_state.received) from None
    assert outcome
    return outcome[0]


async def _cancelled_by_signals(main: Callable[[], Awaitable[_T]]) -> list[_T]:
    # the self-pipe trick: a signal handler may only do something this small and reentrant
    receiver, sender = socket.socketpair()
    sender.setblocking(False)
    # A signal may be delivered to any thread (llama.cpp's, a worker's), and Python runs the
    # handler only once the main thread runs bytecode again: while the event loop sleeps (a
    # model loading or generating in a worker, with no event for minutes) it would not. The
    # wakeup fd is written by the C-level handler, whatever thread the signal lands on.
    previous_fd = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    outcome: list[_T] = []
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as group:
            _state.wakeup = sender
            if _state.received is not None:  # it came while the event loop was starting
                group.cancel_scope.cancel()
            group.start_soon(_cancel_on_wakeup, receiver, group.cancel_scope)
            try:
                outcome.append(await main())
            except Exception as exc:  # noqa: BLE001 - raised below, not wrapped in a group
                failure = exc
            group.cancel_scope.cancel()
    finally:
        signal.set_wakeup_fd(previous_fd)
        _state.wakeup = None
        receiver.close()
        sender.close()
    if failure is not None:
        raise failure
    return outcome


async def _cancel_on_wakeup(receiver: socket.socket, scope: anyio.CancelScope) -> None:
    # the handler writes a zero byte; the C-level handler the signal number, also for signals
    # some library handles (which must not cancel the run)
    receiver.setblocking(False)
    wanted = {0, *_SIGNALS}
    while True:
        await anyio.wait_readable(receiver)
        try:
            received = receiver.recv(64)
        except BlockingIOError:  # a spurious wake-up
            continue
        if wanted.intersection(received):
            scope.cancel()
            return
