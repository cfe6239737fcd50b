"""One supervised connection to one MCP server: connect, serve requests, notice death, restart.

The `mcp.Client` lives in a task of the toolset's task group (its cancel scopes must be entered
and left by one task), so any task may call through it. Whatever ends that task (a closed pipe,
or the ExceptionGroup that HTTP transport errors raise, python-sdk #915) cancels the requests in
flight; they become errors for their callers, never exceptions in the run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import anyio
import anyio.abc
import httpx2
import pydantic
from mcp import Client, MCPError
from mcp.client.session import IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import (
    CONNECTION_CLOSED,
    DiscoverResult,
    PromptListChangedNotification,
    ResourceListChangedNotification,
    ToolListChangedNotification,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from verity.tools.base import ToolError
from verity.tools.mcp._stdio import MESSAGE_TOO_LARGE, StdioState, stdio_transport
from verity.tools.mcp._streams import watched
from verity.tools.mcp._types import HTTPServer, ServerSpec, StdioServer

__all__ = ["ClientOptions", "ServerConnection", "ServerUnavailable"]

_T = TypeVar("_T")
_log = logging.getLogger("verity.mcp")

_WATCH_INTERVAL = 0.2
_PING_TIMEOUT = 5.0


class ServerUnavailable(ToolError):
    """The server could not be reached, died, or is past its restart limit."""


@dataclass(frozen=True)
class ClientOptions:
    """The `mcp.Client` keyword arguments shared by every connection (callbacks, client info)."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    errlog: TextIO | None = None
    """Where stdio servers' stderr goes, each line stamped with the time and the server's name
    (None: passed through to this process's stderr)."""


@dataclass
class _Live:
    client: Client
    stdio: StdioState | None
    close: anyio.Event = field(default_factory=anyio.Event)
    lost: anyio.Event = field(default_factory=anyio.Event)
    ended: anyio.Event = field(default_factory=anyio.Event)
    """The transport's line itself ended (read to its end, or a write failed)."""
    scopes: set[anyio.CancelScope] = field(default_factory=set)
    why: str = ""


class ServerConnection:
    """A connection to one server that reconnects (bounded, with backoff) after it dies."""

    def __init__(
        self,
        spec: ServerSpec,
        group: anyio.abc.TaskGroup,
        options: ClientOptions,
        on_list_changed: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.restarts = 0
        self.protocol_version: str | None = None
        self.error: str | None = None
        self._group = group
        self._options = options
        self._on_list_changed = on_list_changed
        self._live: _Live | None = None
        self._lock = anyio.Lock()
        self._discover: DiscoverResult | None = None
        self._closed = False
        self.failed = False
        """Skipped at start-up: it did not start, or did not list its tools, in time."""

    @property
    def connected(self) -> bool:
        """True while a client is up and its transport has not failed."""
        return self._live is not None and not self._live.lost.is_set()

    @property
    def client(self) -> Client | None:
        """The live client, or None while down."""
        return self._live.client if self.connected and self._live is not None else None

    async def connect(self, deadline: float | None = None) -> None:
        """Connect now, in auto mode (2026-07-28, else the 2025-11-25 handshake).

        Args:
            deadline: `anyio.current_time()` by which the handshake must be done; None: the
                server's start-up timeout from now.

        Raises:
            ServerUnavailable: the server could not be started or did not complete the handshake
                in time.
        """
        async with self._lock:
            await self._connect_locked(deadline)

    async def request(self, what: str, send: Callable[[Client], Awaitable[_T]]) -> _T:
        """Send one request through the live client, reconnecting first if the server died.

        Raises:
            ServerUnavailable: the server is down and could not be restarted, or it died or
                became unreachable during the request.
            ToolError: the request timed out (a cancellation was sent to the server).
            MCPError: the server answered with a JSON-RPC error (any code, -32000 and -32001
                included: only the line's end, never a code, means the connection closed).
        """
        live = await self._ensure_live()
        scope = anyio.CancelScope()
        live.scopes.add(scope)
        try:
            with scope:
                # Our own timer, not the SDK's: its read timeout would also bound the handshake,
                # which only the start-up timeout should. Leaving the scope sends the cancel.
                with anyio.move_on_after(self.spec.timeout):
                    return await send(live.client)
                raise self._timed_out(what)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED and await self._line_ended(live):
                fault = live.stdio.fault if live.stdio is not None else None
                self._mark_lost(live, fault or f"the connection closed during {what}")
                raise self._down(live) from None
            if exc.code == MESSAGE_TOO_LARGE:
                raise ToolError(exc.error.message) from None
            raise
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"][:2])
            raise ToolError(
                f"MCP server {self.spec.name!r} sent an invalid result for {what} "
                f"({exc.error_count()} problems, first at {where}: {first['msg']}). "
                "The server is broken; answer without this tool."
            ) from None
        finally:
            live.scopes.discard(scope)
        # Only the supervisor cancels these scopes: the transport died under the request.
        raise self._down(live)

    async def _line_ended(self, live: _Live) -> bool:
        """Whether an error -32000 means the line ended, rather than being the server's answer.

        Over stdio the transport's end says so. Over HTTP the SDK also makes up a -32000 for a
        request whose event stream broke off (the server died, or dropped the stream), so a
        probe decides: a server that answers it sent the error itself. The probe is `tools/list`,
        which servers of both eras answer (the SDK sends `ping` only in its legacy mode).
        """
        if live.ended.is_set() or live.lost.is_set() or live.stdio is not None:
            return live.ended.is_set() or live.lost.is_set()
        scope = anyio.CancelScope()
        live.scopes.add(scope)
        try:
            with scope, anyio.move_on_after(min(self.spec.timeout, _PING_TIMEOUT)):
                await live.client.list_tools(cache_mode="refresh")
                return False
        except MCPError as exc:  # any other answer, an error too, came over a live line
            return exc.code == CONNECTION_CLOSED
        finally:
            live.scopes.discard(scope)
        return True

    def _timed_out(self, what: str) -> ToolError:
        return ToolError(
            f"MCP server {self.spec.name!r} did not answer {what} within {self.spec.timeout:g} s;"
            " the request was cancelled. Try again or answer without this tool."
        )

    async def close(self) -> None:
        """Close the client; a stdio server gets a grace period, then its group is killed."""
        self._closed = True
        live = self._live
        if live is not None:
            live.close.set()
            with anyio.CancelScope(shield=True):
                await live.lost.wait()

    async def _ensure_live(self) -> _Live:
        live = self._live
        if live is not None and not live.lost.is_set():
            return live
        async with self._lock:
            live = self._live
            if live is not None and not live.lost.is_set():
                return live
            if self._closed:
                raise ServerUnavailable(f"MCP server {self.spec.name!r} is closed.")
            if self.restarts >= self.spec.max_restarts:
                raise ServerUnavailable(
                    f"MCP server {self.spec.name!r} stopped ({self.error}) and was restarted "
                    f"{self.restarts} times already; it stays down for this session. "
                    "Answer without its tools."
                )
            self.restarts += 1
            await anyio.sleep(min(self.spec.restart_backoff * 2 ** (self.restarts - 1), 5.0))
            _log.warning("restarting MCP server %r (restart %d)", self.spec.name, self.restarts)
            await self._connect_locked()
            assert self._live is not None
            return self._live

    async def _connect_locked(self, deadline: float | None = None) -> None:
        mode, prior = "auto", None
        if self.protocol_version in MODERN_PROTOCOL_VERSIONS:
            mode, prior = self.protocol_version, self._discover
        elif self.protocol_version is not None:
            mode = "legacy"  # the era is known: skip the discover probe on restarts
        if deadline is None:
            deadline = anyio.current_time() + self.spec.startup_timeout
        try:
            # In auto mode the SDK falls back to the 2025-11-25 handshake on the same process
            # when the probe is refused or unanswered: a server still being installed by npx or
            # uvx is never killed half-way (that leaves a broken package cache behind).
            self._live = await self._group.start(self._hold, mode, prior, deadline)
        except Exception as exc:
            self.error = _describe(exc)
            raise ServerUnavailable(f"{_where(self.spec)}: {self.error}") from exc
        self.error = None

    async def _hold(
        self,
        mode: str,
        prior: DiscoverResult | None,
        deadline: float,
        *,
        task_status: anyio.abc.TaskStatus[_Live],
    ) -> None:
        """Own one client from connect to close; the task that enters it must also leave it."""
        live: _Live | None = None
        stdio = StdioState() if isinstance(self.spec, StdioServer) else None
        ended = anyio.Event()
        try:
            # One deadline for the whole connect, the discover probe's own 10 s wait included.
            with anyio.CancelScope(deadline=deadline) as cs:
                async with self._client(mode, prior, stdio, ended) as client:
                    cs.deadline = math.inf
                    live = _Live(client=client, stdio=stdio, ended=ended)
                    self.protocol_version = client.protocol_version
                    self._discover = client.session.discover_result
                    task_status.started(live)
                    async with anyio.create_task_group() as inner:
                        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                            inner.start_soon(self._listen, client)
                        if stdio is not None:
                            inner.start_soon(self._watch, live, stdio)
                        await live.close.wait()
                        inner.cancel_scope.cancel()
            if live is None:
                raise TimeoutError(f"no handshake within {self.spec.startup_timeout:g} s")
        except Exception as exc:
            if live is None:
                if stdio is not None and stdio.fault is not None:
                    raise ConnectionError(stdio.fault) from exc
                raise
            self._mark_lost(live, _describe(exc))
            _log.warning("MCP server %r failed: %s", self.spec.name, live.why)
        finally:
            if live is not None:
                self._mark_lost(live, live.why or "closed")

    async def _watch(self, live: _Live, stdio: StdioState) -> None:
        """Notice a stdio server that exits (or breaks its line) between calls: restart it next."""
        while stdio.running and stdio.fault is None:  # noqa: ASYNC110 - no event for either
            await anyio.sleep(_WATCH_INTERVAL)
        self._mark_lost(live, stdio.fault or "the server process exited")
        _log.warning("MCP server %r stopped: %s", self.spec.name, live.why)

    def _mark_lost(self, live: _Live, why: str) -> None:
        if live.lost.is_set():
            return
        live.why = why
        self.error = why
        live.lost.set()
        live.close.set()
        for scope in list(live.scopes):
            scope.cancel()

    def _down(self, live: _Live) -> ServerUnavailable:
        return ServerUnavailable(
            f"MCP server {self.spec.name!r} stopped: {live.why}. It will be restarted for the "
            "next call; try again, or answer without this tool."
        )

    @asynccontextmanager
    async def _client(
        self, mode: str, prior: DiscoverResult | None, stdio: StdioState | None, ended: anyio.Event
    ) -> AsyncIterator[Client]:
        spec = self.spec
        kwargs: dict[str, Any] = dict(
            self._options.kwargs,
            mode=mode,
            prior_discover=prior,
            read_timeout_seconds=None,  # see request(): our timer per request
            message_handler=self._on_message,
        )
        async with AsyncExitStack() as stack:
            if isinstance(spec, StdioServer):
                assert stdio is not None
                transport = stdio_transport(spec, stdio, self._options.errlog)
            elif spec.sse:
                timeout = min(spec.startup_timeout, 30.0)
                transport = sse_client(spec.url, dict(spec.headers), timeout)
            else:
                assert isinstance(spec, HTTPServer)
                http = await stack.enter_async_context(
                    httpx2.AsyncClient(
                        headers=dict(spec.headers),
                        timeout=httpx2.Timeout(min(spec.startup_timeout, 30.0), read=300.0),
                    )
                )
                transport = streamable_http_client(spec.url, http_client=http)
            client = Client(watched(transport, ended), **kwargs)
            yield await stack.enter_async_context(client)

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers send list changes only on a `subscriptions/listen` stream."""
        try:
            async with client.listen(
                tools_list_changed=True, prompts_list_changed=True, resources_list_changed=True
            ) as subscription:
                async for _ in subscription:
                    self._on_list_changed()
        except Exception as exc:  # noqa: BLE001 - change events are optional; lists still work
            _log.debug("MCP server %r: no list-change stream: %s", self.spec.name, exc)

    async def _on_message(self, message: IncomingMessage) -> None:
        changed = (
            ToolListChangedNotification,
            PromptListChangedNotification,
            ResourceListChangedNotification,
        )
        if isinstance(message, changed):
            self._on_list_changed()
        await anyio.lowlevel.checkpoint()


def _where(spec: ServerSpec) -> str:
    if isinstance(spec, StdioServer):
        return f"MCP server {spec.name!r} (command {spec.command!r}) could not be started"
    return f"MCP server {spec.name!r} is unreachable at url {spec.url}"


def _describe(exc: BaseException) -> str:
    """The innermost useful message of an exception or exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, MCPError | TimeoutError) else f"{type(exc).__name__}: {text}"
