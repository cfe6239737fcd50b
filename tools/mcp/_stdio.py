"""The stdio transport: the SDK's spawn and kill helpers, with a reader that survives bad output.

The SDK's own reader (mcp 2.3 `stdio_client`) re-joins and re-splits the whole pending line for
every 64 KiB chunk (quadratic: a 40 MB result took 7 s), stops reading at the first byte that is
not UTF-8 while the session waits on, and leaves a server's children alive when the server
itself exits at end-of-input. This one splits bytes in place, caps each message, ends the
connection on a line it cannot decode (saying why, so the server is restarted), and at close
kills the server's process group and every descendant it had (psutil, so macOS and Windows too).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

import anyio
import anyio.abc
import mcp_types as types
import psutil
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.os.win32.utilities import (
    close_process_job,
    create_windows_process,
    get_windows_executable_command,
    terminate_windows_process_tree,
)
from mcp.shared.message import SessionMessage
from mcp.types import ErrorData, JSONRPCError

from verity.tools.mcp._limits import mark_deep_schemas
from verity.tools.mcp._prestart import adopt, server_environment
from verity.tools.mcp._stderr import StderrPump
from verity.tools.mcp._types import StdioServer

__all__ = ["MESSAGE_TOO_LARGE", "StdioState", "stdio_transport"]

MESSAGE_TOO_LARGE = -32097
"""JSON-RPC error code of the error Verity answers in place of an oversized server message."""

_CHUNK = 1 << 16
_EDGE = 512  # bytes kept from each end of an oversized line, to find its request id
_HEAD_ID = re.compile(rb'^\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*(-?\d+|"[^"\\]{0,200}")')
_TAIL_ID = re.compile(rb',\s*"id"\s*:\s*(-?\d+|"[^"\\]{0,200}")\s*\}\s*$')
_FIRST_ID = re.compile(rb'^\s*\{\s*"id"\s*:\s*(-?\d+|"[^"\\]{0,200}")\s*,')


@dataclass
class StdioState:
    """What the connection learns from its transport: the process, and why the line broke."""

    process: Any = None
    """The server process (anyio `Process`, or the SDK's Windows fallback)."""
    fault: str | None = None
    """Set when the server sent something that ended the connection."""
    oversized: int = 0
    """Messages refused for their size."""
    _descendants: list[psutil.Process] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """Whether the server process has not exited yet."""
        return self.process is not None and self.process.returncode is None


@asynccontextmanager
async def stdio_transport(
    spec: StdioServer, state: StdioState, errlog: TextIO | None
) -> AsyncIterator[tuple[Any, Any]]:
    """Start the server and yield the (read, write) streams an `mcp.Client` runs on.

    Raises:
        OSError: the command could not be started.
    """
    env = server_environment(spec, get_default_environment())
    early = adopt(spec, env) if sys.platform != "win32" else None
    pump: StderrPump | None
    if early is not None:  # started while the command line imported: see `_prestart`
        state.process = _AdoptedProcess(early.process)
        pump = early.pump
    else:
        pump = StderrPump(spec.name, errlog) if errlog is not None else None
        try:
            state.process = await _spawn(spec, env, pump.child_end() if pump else None)
        finally:
            if pump is not None:
                pump.spawned()
    read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_in, write_out = anyio.create_memory_object_stream[SessionMessage](0)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_read, spec, state, read_in)
            group.start_soon(_write, state, write_out, read_in)
            try:
                yield read_out, write_in
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(spec, state)
                    if pump is not None:  # its last lines say why a server died: keep them
                        await anyio.to_thread.run_sync(pump.finish, spec.kill_grace)
                group.cancel_scope.cancel()
    finally:
        for stream in (read_in, read_out, write_in, write_out):
            stream.close()


async def _spawn(spec: StdioServer, env: dict[str, str], stderr: int | None) -> Any:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        command = await anyio.to_thread.run_sync(get_windows_executable_command, spec.command)
        errlog = os.fdopen(stderr, "wb", closefd=False) if stderr is not None else sys.stderr
        return await create_windows_process(command, list(spec.args), env, errlog, spec.cwd)  # type: ignore[arg-type]
    # A new session: the server and all it starts form one process group, killed together.
    return await anyio.open_process(
        [spec.command, *spec.args],
        env=env,
        cwd=spec.cwd,
        stderr=stderr,
        start_new_session=True,
    )


async def _read(
    spec: StdioServer,
    state: StdioState,
    sink: anyio.abc.ObjectSendStream[SessionMessage | Exception],
) -> None:
    """Deliver one message per line; a line the reader cannot use ends the connection."""
    stdout = state.process.stdout
    buffer = bytearray()
    skipped: _Oversized | None = None
    try:
        async with sink:
            while True:
                try:
                    chunk = await stdout.receive(_CHUNK)
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                start = 0
                while start <= len(chunk):
                    end = chunk.find(b"\n", start)
                    piece = chunk[start:] if end < 0 else chunk[start:end]
                    if skipped is not None:
                        skipped.add(piece)
                    else:
                        buffer += piece
                        if len(buffer) > spec.max_message_bytes:
                            skipped = _Oversized(bytes(buffer[:_EDGE]))
                            skipped.add(bytes(buffer[-_EDGE:]))
                            skipped.size = len(buffer)
                            buffer.clear()
                    if end < 0:
                        break
                    start = end + 1
                    message: SessionMessage | str | None
                    if skipped is not None:
                        message = _refuse(spec, state, skipped)
                        skipped = None
                    else:
                        message = _parse(state, bytes(buffer))
                        buffer.clear()
                    if isinstance(message, str):
                        state.fault = message
                        return
                    if message is not None:
                        await sink.send(message)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        return  # the session closed its end: the connection is going away


def _parse(state: StdioState, line: bytes) -> SessionMessage | str | None:
    """A message, None for a line that is not meant as one, or why the connection must end."""
    stripped = line.strip()
    if not stripped.startswith(b"{"):
        return None  # stray output (a banner, a log line): not JSON-RPC, nothing waits on it
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"it sent a line that is not valid UTF-8 (byte {exc.start} of {len(stripped)})"
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(text, by_name=False))
    except ValueError as exc:
        first = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
        if "recursion limit" in first:
            return _parse_deep(text) or f"it sent a message nested too deep to read ({first})"
        return f"it sent a message that is not valid JSON-RPC ({first})"


def _parse_deep(text: str) -> SessionMessage | None:
    """A message deeper than the SDK's parser goes: a tool list with its deep schemas marked."""
    try:
        message = json.loads(text)
        mark_deep_schemas(message)
        return SessionMessage(types.jsonrpc_message_adapter.validate_python(message, by_name=False))
    except (RecursionError, ValueError):
        return None


@dataclass
class _Oversized:
    head: bytes
    tail: bytes = b""
    size: int = 0

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        self.tail = (self.tail + piece[-_EDGE:])[-_EDGE:]


def _refuse(spec: StdioServer, state: StdioState, line: _Oversized) -> SessionMessage | str:
    """An error answer for the request an oversized message answered, if its id can be found."""
    state.oversized += 1
    megabytes = f"{line.size / 1e6:.1f} MB"
    found = _HEAD_ID.search(line.head) or _FIRST_ID.search(line.head) or _TAIL_ID.search(line.tail)
    limit = f"{spec.max_message_bytes / 1e6:g} MB"
    if found is None:
        return f"it sent a {megabytes} message, over the {limit} limit per message"
    request_id: int | str = (
        int(found.group(1)) if found.group(1)[:1] != b'"' else found.group(1)[1:-1].decode()
    )
    error = ErrorData(
        code=MESSAGE_TOO_LARGE,
        message=f"MCP server {spec.name!r} sent a {megabytes} result, over the {limit} limit "
        "per message; it was discarded. Ask for less (a smaller range, a filter), or answer "
        "without this tool.",
    )
    return SessionMessage(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


async def _write(
    state: StdioState,
    source: anyio.abc.ObjectReceiveStream[SessionMessage],
    read_in: anyio.abc.ObjectSendStream[SessionMessage | Exception],
) -> None:
    stdin = state.process.stdin
    try:
        async with source:
            async for message in source:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await stdin.send((data + "\n").encode())
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        # The server stopped reading: end the session rather than let a request wait forever.
        await read_in.aclose()


async def _stop(spec: StdioServer, state: StdioState) -> None:
    """Close stdin, give the server its grace period, then kill its group and descendants."""
    process = state.process
    with suppress(psutil.Error):
        state._descendants = psutil.Process(process.pid).children(recursive=True)
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdin.aclose()
    with anyio.move_on_after(spec.kill_grace):
        while process.returncode is None:  # noqa: ASYNC110 - no event for a process's exit
            await anyio.sleep(0.01)
    if sys.platform == "win32":  # pragma: no cover - Windows: the job object holds the tree
        if process.returncode is None:
            await terminate_windows_process_tree(process)
        close_process_job(process)
    else:
        # Always, even when the server exited by itself: its children may not have.
        await terminate_posix_process_tree(process, spec.kill_grace)
    _kill_all(state._descendants)  # those that left the group (setsid daemons)
    with anyio.move_on_after(spec.kill_grace):
        while process.returncode is None:  # noqa: ASYNC110 - as above
            await anyio.sleep(0.01)
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdout.aclose()
    transport = getattr(getattr(process, "_process", None), "_transport", None)
    if transport is not None:  # else the asyncio transport warns at GC while a pipe end lives
        with suppress(PermissionError):
            transport.close()


class _PipeEnd:
    """One end of a pipe of a process started before the event loop ran (`_prestart`), with
    the methods `_read`, `_write` and `_stop` use of anyio's process streams."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._fd = file.fileno()
        os.set_blocking(self._fd, False)

    async def receive(self, max_bytes: int) -> bytes:
        while True:
            if self._file.closed:
                raise anyio.ClosedResourceError
            try:
                data = os.read(self._fd, max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self._fd)
                continue
            if not data:
                raise anyio.EndOfStream
            return data

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._file.closed:
                raise anyio.ClosedResourceError
            try:
                view = view[os.write(self._fd, view) :]
            except BlockingIOError:
                await anyio.wait_writable(self._fd)
            except BrokenPipeError as exc:
                raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        if not self._file.closed:
            anyio.notify_closing(self._fd)  # a task waiting on it gets ClosedResourceError
            self._file.close()


class _AdoptedProcess:
    """A `subprocess.Popen` started ahead, as the anyio `Process` the transport expects."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self.pid = process.pid
        self.stdin = _PipeEnd(process.stdin)
        self.stdout = _PipeEnd(process.stdout)

    @property
    def returncode(self) -> int | None:
        return self._process.poll()


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        with suppress(psutil.Error):
            if process.is_running():  # also guards against a reused pid
                process.kill()
    psutil.wait_procs(processes, timeout=1.0)
