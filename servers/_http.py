"""Streamable HTTP for Verity's MCP servers: who may call, Host/Origin checks, size limits.

DNS-rebinding protection (the MCP SDK's Host and Origin allowlists) is on for every address,
not only for loopback as the SDK's default is. Bound beyond loopback, a bearer token is
required; it is compared in constant time, never logged, and never passed on. On loopback
without a token only the user who started the server is served: the peer's uid is looked up
(`_peer`), as TCP has no peer credentials, and every other local user is refused (403).
Sessions are bounded per client and in all, and expire when idle (`_sessions`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
import stat
import sys
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from verity.errors import UserError
from verity.servers._client_gone import ClientWatch
from verity.servers._peer import peer_lookup_available, peer_uid
from verity.servers._sessions import SessionLimits

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_SESSIONS_PER_CLIENT",
    "MIN_TOKEN_CHARS",
    "BearerAuth",
    "OwnerOnly",
    "check_exposure",
    "is_loopback",
    "read_token_file",
    "security_settings",
    "serve_http",
]

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
DEFAULT_MAX_SESSIONS = 100
DEFAULT_SESSIONS_PER_CLIENT = 25
DEFAULT_IDLE_TIMEOUT = 600.0
MIN_TOKEN_CHARS = 16
_PEER_UID = "verity.peer_uid"
if TYPE_CHECKING:
    import uvicorn

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a bearer token, or with a token that is guessable
    or that no client could send; refuse a loopback server without a token where the peer's
    user cannot be told (it would serve every local user).

    Raises:
        UserError: what is missing or wrong, and how to fix it.
    """
    if token is not None:
        _check_token(token)
    elif not is_loopback(host):
        raise UserError(
            f"--host {host} makes the server reachable from other machines: set a bearer token "
            f"in VERITY_SERVE_TOKEN (or --token-file), e.g. from: {_MAKE_TOKEN}",
            field="token",
        )
    elif not peer_lookup_available():
        raise UserError(
            "This system cannot tell which user a loopback connection comes from (no "
            "/proc/net/tcp), so without a token every local user could use the server: set a "
            f"bearer token in VERITY_SERVE_TOKEN (or --token-file), e.g. from: {_MAKE_TOKEN}",
            field="token",
        )


def _check_token(token: str) -> None:
    if not token.strip():
        raise UserError(
            f"The bearer token is blank; use a random one, e.g. from: {_MAKE_TOKEN}", field="token"
        )
    if not all("!" <= char <= "~" for char in token):
        raise UserError(
            "The bearer token has spaces or characters other than printable ASCII, which a "
            f"client cannot send in an Authorization header; use e.g. one from: {_MAKE_TOKEN}",
            field="token",
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise UserError(
            f"The bearer token is too short ({len(token)} characters); use at least "
            f"{MIN_TOKEN_CHARS}, e.g. from: {_MAKE_TOKEN}",
            field="token",
        )


def read_token_file(path: Path) -> str:
    """The token in `path` (its first line, without surrounding whitespace); warns when other
    users may read the file.

    Raises:
        UserError: the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UserError(
            f"Cannot read the token file {path}: {reason}.", field="token_file"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"the token file {path} can be read by other users; make it private: chmod 600 {path}",
            UserWarning,
            stacklevel=2,
        )
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def _with_port(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def security_settings(
    host: str, allowed_hosts: Sequence[str] = (), allowed_origins: Sequence[str] = ()
) -> TransportSecuritySettings:
    """Host and Origin allowlists: loopback names, the bound address, and the ones given."""
    names = list(_LOOPBACK_NAMES)
    if host not in ("0.0.0.0", "::", "") and not is_loopback(host):
        names.append(_with_port(host))
    names.extend(_with_port(h) for h in allowed_hosts)
    unique = list(dict.fromkeys(names))
    hosts = [form for name in unique for form in (name, f"{name}:*")]
    origins = [
        f"{scheme}://{name}{port}"
        for name in unique
        for scheme in ("http", "https")
        for port in ("", ":*")
    ]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[*origins, *allowed_origins],
    )


class BearerAuth:
    """Refuses every HTTP request without `Authorization: Bearer <token>` (constant-time check)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass authorised requests (and lifespan events) on; answer the rest 401."""
        if scope["type"] == "http" and not self._authorised(Headers(scope=scope)):
            response = Response(
                "Unauthorized: send the server's token as 'Authorization: Bearer <token>'.\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="verity"'},
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _authorised(self, headers: Headers) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        # compare even for a wrong scheme, so the time taken says nothing about the token
        matches = hmac.compare_digest(given.strip().encode("latin-1"), self._token)
        return matches and scheme.lower() == "bearer"


class OwnerOnly:
    """Refuses every HTTP request whose TCP peer is not this process's user (loopback, no token).

    The peer's uid is looked up for each request: a connection's port may be reused by another
    user once it closes, so no answer is remembered.
    """

    def __init__(self, app: ASGIApp, uid: int | None = None) -> None:
        self._app = app
        self._uid = os.geteuid() if uid is None else uid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the owner's requests (and lifespan events) on; answer the rest 403."""
        if scope["type"] == "http":
            client, server = scope.get("client"), scope.get("server")
            uid = peer_uid(tuple(client), tuple(server)) if client and server else None
            if uid != self._uid:
                response = Response(
                    "Forbidden: this Verity server serves only the user who started it. To "
                    "share it, start it with a token (--token-file or VERITY_SERVE_TOKEN) and "
                    "send it as 'Authorization: Bearer <token>'.\n",
                    status_code=403,
                )
                await response(scope, receive, send)
                return
            scope[_PEER_UID] = uid
        await self._app(scope, receive, send)


def _client_of(scope: Scope) -> Hashable:
    """A client, for the session bounds: its address and, on loopback, its uid."""
    client = scope.get("client")
    return (client[0] if client else None, scope.get(_PEER_UID))


async def serve_http(
    server: MCPServer,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    sessions_per_client: int = DEFAULT_SESSIONS_PER_CLIENT,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    path: str = "/mcp",
) -> None:
    """Serve `server` over streamable HTTP (both protocol eras) until interrupted.

    Without a token only this process's user is served (loopback only). 2025-11-25 sessions
    end after `idle_timeout` seconds without a request; a client keeps at most
    `sessions_per_client` and the server `max_sessions`, the least recently used idle one
    closed to make room.

    Raises:
        UserError: no token beyond loopback, a bad token, or the address cannot be bound.
    """
    import uvicorn  # the HTTP stack: only when serving over HTTP

    check_exposure(host, token)
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=path,
        transport_security=security_settings(host, allowed_hosts, allowed_origins),
        max_request_body_size=max_request_bytes,
        session_idle_timeout=idle_timeout,
        max_sessions=max_sessions,
        host=host,
    )
    app = SessionLimits(
        ClientWatch(app),
        max_sessions=max_sessions,
        per_client=sessions_per_client,
        idle_timeout=idle_timeout,
        client_of=_client_of,
    )
    app = BearerAuth(app, token) if token is not None else OwnerOnly(app)
    try:
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        raise UserError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Choose another --port.",
            field="port",
        ) from None
    bound = sock.getsockname()[1]
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=3, lifespan="on"
    )
    print(f"verity: serving MCP on http://{_with_port(host)}:{bound}{path}", file=sys.stderr)  # noqa: T201
    with sock:
        await _serve_until_cancelled(uvicorn.Server(config), sock)


async def _serve_until_cancelled(server: uvicorn.Server, sock: socket.socket) -> None:
    """Run uvicorn; once cancelled (a signal), let it shut down as after its own Ctrl-C.

    Cancelled from outside, uvicorn would be torn down wherever it is: in the middle of its
    start-up that leaves the app's lifespan task behind, whose cancellation uvicorn then logs
    as an error with a traceback.
    """

    async def serve(group: anyio.abc.TaskGroup) -> None:
        with anyio.CancelScope(shield=True):
            await server.serve(sockets=[sock])
        group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(serve, group)
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True
