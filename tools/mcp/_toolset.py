"""MCPToolset: the tools of any MCP server (stdio, streamable HTTP or SSE) as `<server>__<tool>`.

One `mcp.Client` per server, in `auto` mode (2026-07-28 with v2 servers, the 2025-11-25
handshake with the rest). Servers connect concurrently; one that does not start and list its
tools within its start-up timeout is reported in `status()` and skipped. Every request has a
timeout that sends a cancellation; a server that dies or breaks its line is restarted for the
next call (bounded, with backoff); closing kills each stdio server's whole process tree after a
grace period. Calls pass an `ApprovalGate` first: by default, tools that are not read-only by
`is_read_only()` are withheld. Failures are raised as `ToolError`s for
`verity.tools.toolset.call_tool` to hand to the model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TextIO

import anyio
import anyio.abc
from mcp.types import (
    Prompt,
    Resource,
    ResourceTemplate,
    Tool,
)

from verity.tools.approval import ApprovalGate
from verity.tools.base import ToolError, ToolResult, ToolSpec
from verity.tools.mcp._callbacks import client_callbacks
from verity.tools.mcp._connection import ClientOptions, ServerConnection, ServerUnavailable
from verity.tools.mcp._extras import (
    call_extra,
    capabilities,
    extra_tools,
    get_prompt,
    list_prompts,
    list_resources,
    read_resource,
)
from verity.tools.mcp._limits import ListBudget
from verity.tools.mcp._render import (
    model_tool_name,
    render_content,
    tool_prefixes,
    tool_spec,
)
from verity.tools.mcp._types import (
    RELIST_TIMEOUT,
    ElicitationHandler,
    SamplingHandler,
    ServerSpec,
    StdioServer,
)
from verity.tools.schemas import schema_problem
from verity.tools.toolset import ToolsetNotOpenError

__all__ = ["MCPToolset", "ServerStatus"]

_log = logging.getLogger("verity.mcp")


@dataclass(frozen=True)
class ServerStatus:
    """How one server is doing, for `verity mcp list` and for reporting skipped servers."""

    name: str
    transport: Literal["stdio", "http", "sse"]
    state: Literal["connected", "down", "failed"]
    """`failed`: skipped at start-up (it did not start or list its tools in time)."""
    protocol_version: str | None
    tools: list[str]
    """The server's own tool names, as offered after the allow/deny lists."""
    restarts: int
    error: str | None
    unavailable: dict[str, str] = field(default_factory=dict)
    """Tools not offered, with the reason: jsonschema cannot use their input schema, or they
    are over the size or depth bounds (docs/mcp-limits.md)."""


def _transport(spec: ServerSpec) -> Literal["stdio", "http", "sse"]:
    if isinstance(spec, StdioServer):
        return "stdio"
    return "sse" if spec.sse else "http"


@dataclass
class _Server:
    spec: ServerSpec
    connection: ServerConnection = field(init=False)
    tools: dict[str, tuple[Tool, ToolSpec]] = field(default_factory=dict)
    """Model-facing name → the server's tool and the spec the model sees."""
    extras: dict[str, tuple[str, ToolSpec]] = field(default_factory=dict)
    """Model-facing name → kind (`read_resource`, `get_prompt`) and spec of the read-only tools."""
    prefix: str = ""
    """What the server's tools are prefixed with (its name, made valid)."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """The server's own tool name → why it is not offered."""
    stale: bool = True
    withheld: bool = False
    """Every one of its tools was withheld by the approval gate at the last listing."""

    def mark_stale(self) -> None:
        """The server said its lists changed: re-list before the next `list_tools()`."""
        self.stale = True


class MCPToolset:
    """The tools of several MCP servers, offered to the model as `<server>__<tool>`."""

    def __init__(
        self,
        servers: Iterable[ServerSpec],
        *,
        elicitation: ElicitationHandler | None = None,
        sampling: SamplingHandler | None = None,
        resource_tools: bool = True,
        errlog: TextIO | None = None,
        approval: ApprovalGate | None = None,
        skipped: Mapping[str, str] | None = None,
    ) -> None:
        """Describe the servers; nothing starts before `async with`.

        Args:
            servers: One definition per server; names must be unique.
            elicitation: Answers servers' requests for user input; None declines them.
            sampling: Answers servers' requests for a completion (legacy MCP sampling); None
                leaves the capability off.
            resource_tools: Offer resources and prompts as the read-only tools
                `<server>__read_resource` and `<server>__get_prompt` where a server has them.
            errlog: Where stdio servers' stderr goes, each line stamped with the time and the
                server's name; None passes it through to this process's stderr.
            approval: Which tools may run; None: read-only tools (by `is_read_only()`: hints
                count only from servers marked `trusted`) run, all others are withheld. Give
                `ApprovalGate(ask=...)` to ask a person, or `ApprovalGate(allow=["name__*"])`.
            skipped: Configured servers left out before starting (a command not found, a broken
                config entry), by name, with why: `problems()` counts them as not started.

        Raises:
            ValueError: two servers share a name, or a name is empty.
        """
        self._specs = list(servers)
        names = [s.name for s in self._specs]
        if len(set(names)) != len(names) or not all(n.strip() for n in names):
            raise ValueError(f"server names must be unique and non-empty: {names}")
        self._prefixes = tool_prefixes(names)
        self.approval = approval or ApprovalGate()
        self._elicitation = elicitation
        self._sampling = sampling
        self._resource_tools = resource_tools
        self._errlog = errlog
        self._skipped = dict(skipped or {})
        self._servers: dict[str, _Server] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._entries = 0

    async def __aenter__(self) -> Self:
        """Start the servers; entering an open toolset again only counts the entry, so one held
        open serves many runs (and their servers); the last exit, in the first entry's task, closes.
        """
        if self._entries:
            self._entries += 1
            return self
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        try:
            for spec in self._specs:
                callbacks = client_callbacks(spec.name, self._elicitation, self._sampling)
                options = ClientOptions(callbacks, errlog=self._errlog)
                server = _Server(spec, prefix=self._prefixes[spec.name])
                server.connection = ServerConnection(spec, self._group, options, server.mark_stale)
                self._servers[spec.name] = server
            async with anyio.create_task_group() as starting:
                for server in self._servers.values():
                    starting.start_soon(self._start, server)
        except BaseException:
            await self._close()
            raise
        self._entries = 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Count the exit; the last one closes every server."""
        self._entries -= 1
        if self._entries <= 0:
            self._entries = 0
            await self._close()

    async def _close(self) -> None:
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as closing:
                for server in self._servers.values():
                    closing.start_soon(server.connection.close)
        group, self._group = self._group, None
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)

    def status(self) -> list[ServerStatus]:
        """One status per configured server, in configuration order."""
        return [
            ServerStatus(
                name=s.spec.name,
                transport=_transport(s.spec),
                state="connected"
                if s.connection.connected
                else (
                    "down"
                    if s.connection.protocol_version and not s.connection.failed
                    else "failed"
                ),
                protocol_version=s.connection.protocol_version,
                tools=[tool.name for tool, _ in s.tools.values()],
                restarts=s.connection.restarts,
                error=s.connection.error,
                unavailable=dict(s.unavailable),
            )
            for s in self._servers.values()
        ]

    def tool_specs(self, server: str) -> dict[str, ToolSpec]:
        """The server's own tool names with the specs the model sees.

        Raises:
            KeyError: no such server.
        """
        return {tool.name: spec for tool, spec in self._servers[server].tools.values()}

    def added_specs(self, server: str) -> dict[str, ToolSpec]:
        """The read-only tools Verity adds for the server's resources and prompts
        (`read_resource`, `get_prompt`), with the specs the model sees.

        Raises:
            KeyError: no such server.
        """
        return dict(self._servers[server].extras.values())

    def capabilities(self, server: str) -> dict[str, Any]:
        """What `server` announced (`tools`, `resources`, `prompts`, ...); empty while down.

        Raises:
            KeyError: no such server.
        """
        return capabilities(self._servers[server].connection)

    async def list_tools(self) -> list[ToolSpec]:
        """The offered tools of every server that connected; lists refresh after a change.

        Tools the approval gate withholds are left out (and reported to its listeners).

        Raises:
            ToolsetNotOpenError: the toolset is not open.
        """
        self._require_open()
        specs: list[ToolSpec] = []
        for server in self._servers.values():
            if server.stale and server.connection.connected:
                # Re-listed once per change: a server that hangs on it keeps its last list.
                server.stale = False
                with anyio.move_on_after(min(server.spec.startup_timeout, RELIST_TIMEOUT)):
                    await self._refresh(server)
            specs.extend(spec for _, spec in server.tools.values())
            specs.extend(spec for _, spec in server.extras.values())
        offered = await self.approval.screen(specs)
        names = {spec.name for spec in offered}
        for server in self._servers.values():
            server.withheld = bool(server.tools) and names.isdisjoint(server.tools)
        return offered

    def problems(self) -> list[str]:
        """One line per server the model cannot use: it did not start (or list its tools) in
        time, or the approval gate withheld every one of its tools at the last listing."""
        found = [f"MCP server {name!r} did not start: {why}" for name, why in self._skipped.items()]
        for server in self._servers.values():
            name = server.spec.name
            if server.connection.failed:
                found.append(f"MCP server {name!r} did not start: {server.connection.error}")
            elif server.withheld:
                why = "they need approval and nobody could give it"
                found.append(f"every tool of MCP server {name!r} was withheld: {why}")
        return found

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call `<server>__<tool>`, once the approval gate lets it through.

        Raises:
            KeyError: no offered tool has this name.
            ToolError: the call was denied, timed out, or the server is down (it is restarted
                next time).
            MCPError: the server answered with a protocol error.
            ToolsetNotOpenError: the toolset is not open.
        """
        self._require_open()
        for server in self._servers.values():
            if name in server.tools:
                tool, spec = server.tools[name]
                await self.approval.check(spec, arguments)
                return await self._call(server, tool.name, arguments)
            if name in server.extras:
                await self.approval.check(server.extras[name][1], arguments)
                kind = server.extras[name][0]
                return await call_extra(server.connection, kind, arguments)
        raise KeyError(name)

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Call a tool by its server's own name, as the person who asked for it directly
        (`verity mcp call`): no approval; the allow/deny lists still apply.

        Raises:
            KeyError: no such server, or the tool is not offered.
            ToolError: the call timed out, or the server is down.
            MCPError: the server answered with a protocol error.
        """
        entry = self._servers[server]
        if not entry.spec.offers(tool):
            raise KeyError(tool)
        return await self._call(entry, tool, arguments)

    async def list_resources(self, server: str) -> tuple[list[Resource], list[ResourceTemplate]]:
        """The resources and resource templates of one server.

        Raises:
            KeyError: no such server.
            ToolError: the server is down or did not answer in time.
        """
        return await list_resources(self._servers[server].connection)

    async def read_resource(self, server: str, uri: str) -> str:
        """The contents of one resource, as text for the model.

        Raises:
            KeyError: no such server.
            ToolError: the server is down or did not answer in time.
            MCPError: the server does not know the resource.
        """
        return await read_resource(self._servers[server].connection, uri)

    async def list_prompts(self, server: str) -> list[Prompt]:
        """The prompts of one server.

        Raises:
            KeyError: no such server.
            ToolError: the server is down or did not answer in time.
        """
        return await list_prompts(self._servers[server].connection)

    async def get_prompt(self, server: str, name: str, arguments: dict[str, str]) -> str:
        """One prompt rendered as text, each message headed by its role.

        Raises:
            KeyError: no such server.
            ToolError: the server is down or did not answer in time.
            MCPError: the server does not know the prompt or rejects the arguments.
        """
        return await get_prompt(self._servers[server].connection, name, arguments)

    def _require_open(self) -> None:
        if self._group is None:
            names = ", ".join(repr(s.name) for s in self._specs)
            raise ToolsetNotOpenError(
                f"The MCP toolset for {names} is not open: enter it with `async with toolset:` "
                "(or pass it to run(), which enters it) before using its tools."
            )

    async def _start(self, server: _Server) -> None:
        """Connect and list the tools within the start-up timeout, or skip the server."""
        spec, connection = server.spec, server.connection
        deadline = anyio.current_time() + spec.startup_timeout
        try:
            await connection.connect(deadline)
            with anyio.fail_after(max(deadline - anyio.current_time(), 0)):
                while True:
                    try:
                        await self._refresh(server, strict=True)
                        break
                    except ServerUnavailable:
                        raise
                    except ToolError:  # its per-request timeout ran out: the start-up one rules
                        continue
        except TimeoutError:
            connection.error = f"it did not list its tools within {spec.startup_timeout:g} s"
            await self._skip(server, f"MCP server {spec.name!r}: {connection.error}")
        except ToolError as exc:
            await self._skip(server, str(exc))
        except Exception as exc:  # noqa: BLE001 - a server whose lists fail offers no tools
            connection.error = f"listing its tools failed: {exc}"
            await self._skip(server, f"MCP server {spec.name!r}: {connection.error}")

    async def _skip(self, server: _Server, problem: str) -> None:
        server.connection.failed = True
        error = server.connection.error
        await server.connection.close()
        server.connection.error = error  # why it was skipped, not that it was closed
        hint = ""
        if isinstance(server.spec, StdioServer):
            log = getattr(self._errlog, "name", None)
            hint = f" Its output is in {log}." if isinstance(log, str) else ""
        if "within" in (error or ""):
            hint += (
                " A first start through npx or uvx downloads the package: give the server more"
                ' time with "startupTimeout" (seconds) in its config entry.'
            )
        _log.warning("%s; skipping it.%s", problem, hint)

    async def _refresh(self, server: _Server, *, strict: bool = False) -> None:
        """Re-list tools (and resources and prompts); a failed re-list keeps the last lists.

        Raises:
            Exception: only with `strict`: whatever the listing raised.
        """
        connection = server.connection
        try:
            listed = await connection.request(
                "tools/list", lambda c: c.list_tools(cache_mode="refresh")
            )
            tools = {t.name: t for t in listed.tools if server.spec.offers(t.name)}
            extras = await extra_tools(connection) if self._resource_tools else {}
        except Exception as exc:
            if strict:
                raise
            connection.error = f"listing failed: {exc}"
            _log.warning("MCP server %r: %s", server.spec.name, connection.error)
            return
        taken: set[str] = set()
        budget = ListBudget(
            max_tool_bytes=server.spec.max_tool_bytes, max_list_bytes=server.spec.max_list_bytes
        )
        server.tools = {}
        server.unavailable = {}
        for tool in tools.values():
            name = model_tool_name(server.prefix, tool.name, taken)
            spec = tool_spec(name, tool, trusted=server.spec.trusted)
            if self._usable(server, tool.name, spec, budget):
                taken.add(name)
                server.tools[name] = (tool, spec)
        server.extras = {}
        for kind, extra in extras.items():
            name = model_tool_name(server.prefix, kind, taken)
            spec = ToolSpec(
                name=name,
                description=extra.description,
                parameters=extra.parameters,
                read_only=True,
                protocol_read=extra.protocol_read,
            )
            if self._usable(server, kind, spec, budget):
                taken.add(name)
                server.extras[name] = (kind, spec)
        server.stale = False

    @staticmethod
    def _usable(server: _Server, tool: str, spec: ToolSpec, budget: ListBudget) -> bool:
        """Whether one tool can be offered; one that cannot never takes the others down."""
        problem = budget.problem(spec) or schema_problem(spec.parameters)
        if problem is None:
            budget.take(spec)
            return True
        server.unavailable[tool] = problem
        _log.warning("MCP server %r: tool %r is unavailable: %s", server.spec.name, tool, problem)
        return False

    async def _call(self, server: _Server, tool: str, arguments: dict[str, Any]) -> ToolResult:
        result = await server.connection.request(
            f"tools/call {tool!r}", lambda c: c.call_tool(tool, arguments)
        )
        content = render_content(
            result.content, result.structured_content, max_chars=server.spec.max_output_chars
        )
        return ToolResult(
            content=content, is_error=result.is_error, structured=result.structured_content
        )
