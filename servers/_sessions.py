"""Bounds on the 2025-11-25 sessions of an HTTP server: per client and in all, LRU when full.

A 2025-11-25 client opens a session with `initialize` and should end it with DELETE; a client
that dies, or a script that opens sessions and walks away, never does. The MCP SDK ends a session
after `session_idle_timeout` without requests and refuses new ones (503) past `max_sessions`;
alone, that lets one client fill the table and lock every other out until its sessions expire.
Here a client (its address and, on loopback, its uid) holds at most `per_client` sessions, and a
session that would pass either bound first closes the least recently used idle session (no
request in flight): the opener's own when it is at its share, anyone's when the server is full.
A closed session's ID answers 404, upon which a client opens a new one (the spec's rule). Only
when every candidate is busy is the new session refused.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import anyio
from mcp_types import INTERNAL_ERROR, ErrorData, JSONRPCError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SessionLimits"]

_SESSION_HEADER = "mcp-session-id"
_VERSION_HEADER = "mcp-protocol-version"


@dataclass
class _Session:
    client: Hashable
    last_used: float
    in_flight: int = 0


class SessionLimits:
    """ASGI middleware in front of an MCP streamable-HTTP app: the bounds described above."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_sessions: int,
        per_client: int,
        idle_timeout: float,
        client_of: Callable[[Scope], Hashable],
    ) -> None:
        """Bound the sessions of `app`; `client_of(scope)` names the client of a request.

        Raises:
            ValueError: a bound below 1 or a timeout that is not a positive number.
        """
        if max_sessions < 1 or per_client < 1:
            raise ValueError("max_sessions and per_client must be at least 1")
        if not (math.isfinite(idle_timeout) and idle_timeout > 0):
            raise ValueError("idle_timeout must be a positive number of seconds")
        self._app = app
        self.max_sessions = max_sessions
        self.per_client = min(per_client, max_sessions)
        self.idle_timeout = idle_timeout
        self._client_of = client_of
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # least recently used first
        self._opening: dict[Hashable, int] = {}

    @property
    def open_sessions(self) -> int:
        """Sessions open now, as far as this middleware knows (idle ones expire lazily)."""
        self._expire()
        return len(self._sessions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the requests of known sessions; make room before a request opens one."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        session_id = headers.get(_SESSION_HEADER)
        if session_id is not None:
            await self._in_session(session_id, scope, receive, send)
        elif scope["method"] == "POST" and _handshake_era(headers):
            await self._opening_session(scope, receive, send)
        else:  # a 2026-07-28 request: it has no session
            await self._app(scope, receive, send)

    async def _in_session(
        self, session_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.in_flight += 1
            self._sessions.move_to_end(session_id)
        status = await _status_of(self._app, scope, receive, send)
        if session is None:
            return
        session.in_flight -= 1
        session.last_used = time.monotonic()
        ended = status == 404 or (
            scope["method"] == "DELETE" and status is not None and status < 300
        )
        if ended:
            self._sessions.pop(session_id, None)

    async def _opening_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self._client_of(scope)
        if not await self._make_room(client, scope):
            await _refusal(self.per_client)(scope, receive, send)
            return
        self._opening[client] = self._opening.get(client, 0) + 1
        opened: list[str] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                session_id = Headers(raw=message.get("headers", [])).get(_SESSION_HEADER)
                if session_id is not None:
                    opened.append(session_id)
            await send(message)

        try:
            await self._app(scope, receive, watch)
        finally:
            self._opening[client] -= 1
            if not self._opening[client]:
                del self._opening[client]
            for session_id in opened:
                self._sessions[session_id] = _Session(client, time.monotonic())

    async def _make_room(self, client: Hashable, scope: Scope) -> bool:
        """Close idle sessions until `client` may open one; False when all are busy."""
        self._expire()
        while True:
            own = [sid for sid, s in self._sessions.items() if s.client == client]
            if len(own) + self._opening.get(client, 0) >= self.per_client:
                candidates = own
            elif len(self._sessions) + sum(self._opening.values()) >= self.max_sessions:
                candidates = list(self._sessions)
            else:
                return True
            idle = next((sid for sid in candidates if not self._sessions[sid].in_flight), None)
            if idle is None:
                return False
            del self._sessions[idle]  # before the await: no other opener picks it too
            await self._close(idle, scope)

    async def _close(self, session_id: str, like: Scope) -> None:
        """End a session as its client would: DELETE, through the app, shielded."""
        headers = [(k, v) for k, v in like["headers"] if k.lower() == b"host"]
        headers.append((_SESSION_HEADER.encode(), session_id.encode("latin-1")))
        scope = {**like, "method": "DELETE", "headers": headers, "query_string": b""}
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        async def discard(message: Message) -> None:
            pass

        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self._app(scope, receive, discard)

    def _expire(self) -> None:
        """Forget sessions the SDK has ended for idleness (it answers 404 for them by now)."""
        horizon = time.monotonic() - self.idle_timeout
        for session_id, session in list(self._sessions.items()):
            if not session.in_flight and session.last_used < horizon:
                del self._sessions[session_id]


def _handshake_era(headers: Headers) -> bool:
    """Whether a request is of the 2025-11-25 era (sessions), routed as the SDK routes it."""
    version = headers.get(_VERSION_HEADER)
    return version is None or version in HANDSHAKE_PROTOCOL_VERSIONS


async def _status_of(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> int | None:
    status: int | None = None

    async def watch(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    await app(scope, receive, watch)
    return status


def _refusal(per_client: int) -> Response:
    message = (
        f"Too many open sessions: every session this server may keep for this client (at most "
        f"{per_client}) or in all has a request in flight. End one (DELETE) or retry later."
    )
    body = JSONRPCError(
        jsonrpc="2.0", id=None, error=ErrorData(code=INTERNAL_ERROR, message=message)
    )
    return Response(
        body.model_dump_json(by_alias=True, exclude_unset=True),
        status_code=503,
        media_type="application/json",
        headers={"Retry-After": "5"},
    )
