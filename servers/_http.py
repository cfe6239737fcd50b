"""Streamable HTTP for Verity's MCP servers: Host/Origin checks, a bearer token, size limits.

DNS-rebinding protection (the MCP SDK's Host and Origin allowlists) is on for every address,
not only for loopback as the SDK's default is. Bound beyond loopback, a bearer token is
required; it is compared in constant time, never logged, and never passed on.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import sys
from collections.abc import Sequence

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from verity.errors import UserError

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "MIN_TOKEN_CHARS",
    "BearerAuth",
    "check_exposure",
    "is_loopback",
    "security_settings",
    "serve_http",
]

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
MIN_TOKEN_CHARS = 16
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
    """Refuse to serve beyond loopback without a bearer token, or with a guessable one.

    Raises:
        UserError: what is missing, and how to fix it.
    """
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise UserError(
            f"The bearer token is too short ({len(token)} characters); use at least "
            f"{MIN_TOKEN_CHARS}, e.g. from: {_MAKE_TOKEN}",
            field="token",
        )
    if token is None and not is_loopback(host):
        raise UserError(
            f"--host {host} makes the server reachable from other machines: set a bearer token "
            f"in VERITY_SERVE_TOKEN (or --token), e.g. from: {_MAKE_TOKEN}",
            field="token",
        )


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


async def serve_http(
    server: MCPServer,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    path: str = "/mcp",
) -> None:
    """Serve `server` over streamable HTTP (both protocol eras) until interrupted.

    Raises:
        UserError: no token beyond loopback, a short token, or the address cannot be bound.
    """
    import uvicorn  # the HTTP stack: only when serving over HTTP

    check_exposure(host, token)
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=path,
        transport_security=security_settings(host, allowed_hosts, allowed_origins),
        max_request_body_size=max_request_bytes,
        host=host,
    )
    if token is not None:
        app = BearerAuth(app, token)
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
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3,
                            lifespan="on")  # fmt: skip
    print(f"verity: serving MCP on http://{_with_port(host)}:{bound}{path}", file=sys.stderr)  # noqa: T201
    with sock:
        await uvicorn.Server(config).serve(sockets=[sock])
