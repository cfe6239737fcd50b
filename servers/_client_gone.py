"""Whether the HTTP client of a request is still there, so that a run nobody can receive ends.

A 2025-11-25 `tools/call` over streamable HTTP is answered on its POST's own event stream. When
the client goes away mid-call (it dies, or drops the connection) the MCP SDK closes that stream,
but the handler runs on: with no event store its result can never be delivered, yet it would
hold the shared model to its last step. `ClientWatch` puts an event into every HTTP request's
ASGI scope and sets it when the exchange ends before its response was complete; `client_gone`
finds that event for a tool handler. (A 2026-07-28 call is cancelled by the SDK itself then.)
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ClientWatch", "client_gone"]

_SCOPE_KEY = "verity.client_gone"


class ClientWatch:
    """ASGI middleware: each HTTP request's scope gets an event, set if its client leaves first."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; set its event unless the whole response went out."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        gone = anyio.Event()
        scope[_SCOPE_KEY] = gone
        complete = False

        async def watched(message: Message) -> None:
            nonlocal complete
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True

        try:
            await self._app(scope, receive, watched)
        finally:
            if not complete:
                gone.set()


def client_gone(request: object) -> anyio.Event | None:
    """The event `ClientWatch` set up for `request` (a Starlette request); None over stdio."""
    scope = getattr(request, "scope", None)
    event = scope.get(_SCOPE_KEY) if isinstance(scope, dict) else None
    return event if isinstance(event, anyio.Event) else None
