"""Plain definitions of MCP servers and of the callbacks that answer their requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "RELIST_TIMEOUT",
    "ElicitationAnswer",
    "ElicitationHandler",
    "ElicitationRequest",
    "HTTPServer",
    "SamplingHandler",
    "SamplingRequest",
    "ServerSpec",
    "StdioServer",
]


DEFAULT_STARTUP_TIMEOUT = 120.0
"""Seconds every server gets to start, hand-shake and list its tools unless told otherwise: a
first start through npx or uvx downloads the package, and a Python server started by its path
can take many seconds to import on a loaded machine; a server that dies fails at once anyway."""
RELIST_TIMEOUT = 10.0
"""Seconds a connected server gets to re-list its tools after it said they changed."""


@dataclass(frozen=True, kw_only=True)
class _ServerOptions:
    name: str
    """The `mcpServers` key; tools are offered as `<name>__<tool>`."""
    include_tools: frozenset[str] | None = None
    """Offer only these tools (None: all)."""
    exclude_tools: frozenset[str] = frozenset()
    """Never offer these tools."""
    timeout: float = 60.0
    """Seconds one request may take; then it is cancelled and the call becomes an error."""
    connect_timeout: float | None = None
    """Seconds to start the server, complete the handshake and list its tools (`startupTimeout`);
    None: `DEFAULT_STARTUP_TIMEOUT`, the same for every kind of server."""
    trusted: bool = False
    """Believe the server's tool annotations (`"trust": true`): only then may its `readOnlyHint`
    let a tool run without approval. Annotations are untrusted hints otherwise (MCP spec)."""
    max_restarts: int = 3
    """Restarts after the server died, per session; then its calls fail at once."""
    restart_backoff: float = 0.25
    """Seconds before the first restart, doubled for each further one (at most 5 s)."""
    kill_grace: float = 2.0
    """Seconds a stdio server's process group gets after SIGTERM before SIGKILL."""
    max_output_chars: int = 100_000
    """Longest text of one result kept in memory; the run's own cap is usually lower."""
    max_message_bytes: int = 32 * 2**20
    """Largest message read from a stdio server; a larger result fails its call at once."""
    max_tool_bytes: int = 16 * 2**10
    """Largest definition of one tool (name, description, input schema as JSON); a larger tool
    is unavailable, with a warning naming it."""
    max_list_bytes: int = 128 * 2**10
    """Largest sum of the offered tools' definitions; tools past it are unavailable."""

    @property
    def startup_timeout(self) -> float:
        """`connect_timeout`, or the default."""
        return DEFAULT_STARTUP_TIMEOUT if self.connect_timeout is None else self.connect_timeout

    def offers(self, tool: str) -> bool:
        """Whether the allow/deny lists let `tool` through."""
        allowed = self.include_tools is None or tool in self.include_tools
        return allowed and tool not in self.exclude_tools


@dataclass(frozen=True, kw_only=True)
class StdioServer(_ServerOptions):
    """A server Verity starts as a subprocess and talks to over stdin/stdout."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to a minimal inherited environment (HOME, PATH, ...), as Claude Desktop does."""
    cwd: str | None = None


@dataclass(frozen=True, kw_only=True)
class HTTPServer(_ServerOptions):
    """A server reached over HTTP: streamable HTTP, or the older HTTP+SSE transport."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    sse: bool = False
    """Speak the HTTP+SSE transport of 2024-11-05 (`"type": "sse"`), still served by many."""


ServerSpec = StdioServer | HTTPServer


@dataclass(frozen=True)
class ElicitationRequest:
    """A server asks the user for input (form mode)."""

    server: str
    message: str
    schema: dict[str, Any]
    """JSON Schema of the requested object (flat: strings, numbers, booleans, enums)."""


@dataclass(frozen=True)
class ElicitationAnswer:
    """The user's reply: accept with content, decline, or cancel."""

    action: Literal["accept", "decline", "cancel"]
    content: dict[str, Any] | None = None


@dataclass(frozen=True)
class SamplingRequest:
    """A server asks the client's model for a completion (legacy MCP sampling)."""

    server: str
    messages: list[tuple[str, str]]
    """(role, text) pairs."""
    system_prompt: str | None
    max_tokens: int


ElicitationHandler = Callable[[ElicitationRequest], Awaitable[ElicitationAnswer]]
SamplingHandler = Callable[[SamplingRequest], Awaitable[str]]
