"""When llama.cpp's native objects may be touched, and when they may be freed.

A generation runs in a worker thread and spends most of its time inside llama.cpp. Freeing the
model or a context under it crashes the process (SIGSEGV in libggml), so every native call is
made while holding `NativeGuard`, and `close()` frees only once it holds the guard itself. To
keep that wait short, a stop request sets a flag that the generation checks every token and
that llama.cpp reads between the nodes of its compute graph (its abort callback), so a long
prompt evaluation on the CPU stops within milliseconds. GPU backends ignore the callback; they
finish the current batch, which takes well under a second there.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import llama_cpp

__all__ = ["AbortFlag", "GenerationStopped", "NativeGuard", "route_native_log"]

_log = logging.getLogger("verity.llama_cpp")
_log.addHandler(logging.NullHandler())


class GenerationStopped(Exception):
    """A stop was requested and the generation has left llama.cpp."""


def _strlen() -> int | None:
    try:
        libc = ctypes.CDLL(None)
        return ctypes.cast(libc.strlen, ctypes.c_void_p).value
    except (OSError, AttributeError):  # no C library symbols in this process (Windows)
        return None


class AbortFlag:
    """A byte that llama.cpp's abort callback reads without calling back into Python.

    The callback is the C library's `strlen` on a two-byte buffer, "" (false) or "\\x01" (true):
    a Python callback would take the GIL at each of the hundreds of graph nodes per token, and
    stall generation behind any busy Python thread. Where there is no `strlen` to point at, the
    callback is Python after all.
    """

    def __init__(self) -> None:
        self._buffer = ctypes.create_string_buffer(2)
        address = _strlen()
        self._callback: Any = (
            llama_cpp.ggml_abort_callback(address)
            if address is not None
            else llama_cpp.ggml_abort_callback(lambda _data: self.is_set())
        )

    def set(self) -> None:
        """Ask llama.cpp to abort the decode in progress (and every later one until cleared)."""
        self._buffer[0] = b"\x01"

    def clear(self) -> None:
        """Let decodes run again."""
        self._buffer[0] = b"\x00"

    def is_set(self) -> bool:
        """Whether an abort was asked for."""
        return self._buffer[0] != b"\x00"

    def attach(self, context: Any) -> None:
        """Make decodes on this `llama_context *` abort while the flag is set."""
        llama_cpp.llama_set_abort_callback(context, self._callback, ctypes.addressof(self._buffer))


class NativeGuard:
    """One lock for one loaded model: held by whoever is inside its native code.

    `entered(stop)` holds it for one job (a generation, a load); `stop(event)` ends that job at
    its next token or graph node; `close(free)` stops the job in progress and frees once it left.
    """

    def __init__(self) -> None:
        self.abort = AbortFlag()
        self._native = threading.Lock()
        self._state = threading.Lock()
        self._owner: int | None = None
        self._job: threading.Event | None = None
        self._free_on_exit: Callable[[], None] | None = None

    @contextmanager
    def entered(self, stop: threading.Event) -> Iterator[None]:
        """Hold the guard for one job; `stop` is the job's stop request.

        Raises:
            GenerationStopped: the job was stopped before it got the guard.
        """
        with self._native:
            with self._state:
                if stop.is_set():
                    raise GenerationStopped
                self._owner, self._job = threading.get_ident(), stop
                self.abort.clear()
            try:
                yield
            finally:
                with self._state:
                    self._owner = self._job = None
                    free, self._free_on_exit = self._free_on_exit, None
                if free is not None:
                    free()

    def stop(self, job: threading.Event) -> None:
        """Stop `job` at its next token, or at once if it is inside a decode."""
        with self._state:
            job.set()
            if self._job is job:
                self.abort.set()

    def close(self, free: Callable[[], None]) -> None:
        """Stop the job in progress and call `free` once no thread is inside native code.

        Safe from any thread at any moment. Called from inside the job's own thread (a callback
        under a generation), `free` runs when that job leaves, and this returns at once.
        """
        with self._state:
            if self._job is not None:
                self._job.set()
                self.abort.set()
            if self._owner == threading.get_ident():
                self._free_on_exit = free
                return
        with self._native:
            free()


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _forward_native_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    # llama.cpp reports an aborted decode as errors: that is our own stop, not news for stderr
    global _last_level
    _last_level = _last_level if level == _NATIVE_CONTINUE else _NATIVE_LEVELS.get(level, 0)
    message = text.decode("utf-8", "replace").rstrip()
    if message and _last_level:
        _log.log(_last_level, "%s", message)


# ggml.h's enum ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (the previous
# line goes on). llama-cpp-python's own table is older and one off: INFO would read as WARNING.
_NATIVE_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_NATIVE_CONTINUE = 5
_last_level = logging.DEBUG


def route_native_log() -> None:
    """Send llama.cpp's own log lines to the `verity.llama_cpp` logger instead of stderr.

    They would otherwise print over the answer (an aborted decode logs two error lines). A
    user who wants them configures that logger like any other.

    With its log routed, llama.cpp has nothing left to print, so llama-cpp-python's own way of
    keeping it quiet is turned off: while it loads a model (verbose=False) it points the whole
    process's file descriptors 1 and 2 at /dev/null, which also swallowed what every other
    thread wrote meanwhile: the progress line, an MCP server's failure, a warning.
    """
    llama_cpp.llama_log_set(_forward_native_log, ctypes.c_void_p(0))
    for module in (llama_cpp.llama, llama_cpp._internals):
        module.suppress_stdout_stderr = _OutputKept  # type: ignore[attr-defined]


class _OutputKept:
    """In place of llama-cpp-python's `suppress_stdout_stderr`: leaves stdout and stderr as they
    are."""

    def __init__(self, disable: bool = True) -> None:
        del disable

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None
