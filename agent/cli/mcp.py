"""`verity mcp ...` and `verity run --mcp-config FILE`: MCP servers from the command line.

`verity mcp list` connects to every configured server and shows its era, tools and health;
`verity mcp call SERVER TOOL --args JSON`, `read SERVER URI` and `prompt SERVER NAME` are for
debugging a server the way the agent sees it; `verity mcp import` (in `mcp_import.py`) copies
other clients' servers in. In a run, tools that need approval are asked about on the terminal;
when nobody is there to answer they are withheld, said on stderr, unless `--allow PATTERN`
allows them. Whatever a server sent is printed through `printable()`.
"""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from verity._assembly import Approvals, approval_gate, server_log
from verity.cli._server_choice import config_path, server_names
from verity.cli._signals import run_interruptibly
from verity.cli.mcp_import import add_import_action
from verity.errors import MCPServerError, UserError
from verity.mcp_config import (
    MCPConfig,
    default_mcp_config_path,
    load_mcp_config,
)
from verity.models.grammar import schema_grammar
from verity.terminal import printable
from verity.tools.approval import (
    Answer,
    ApprovalDecision,
    ApprovalGate,
)
from verity.tools.base import ToolError, ToolSpec
from verity.tools.mcp._names import tool_prefixes
from verity.tools.mcp._types import DEFAULT_STARTUP_TIMEOUT, ElicitationAnswer, ElicitationRequest

if TYPE_CHECKING:
    from verity.tools.mcp import MCPToolset

__all__ = [
    "add_mcp_commands",
    "add_mcp_options",
    "configured_servers",
    "mcp_command",
    "terminal_approvals",
]

EXIT_TOOL_ERROR = 1
EXIT_SERVER_FAILED = 1
_T = TypeVar("_T")


def add_mcp_options(parser: argparse.ArgumentParser) -> None:
    """`--mcp-config FILE`, `--servers`, approvals and `--mcp-sampling` for `verity run`."""
    _add_config_options(parser)
    parser.add_argument(
        "--mcp-sampling",
        action="store_true",
        help="let MCP servers ask the local model for completions (legacy MCP sampling)",
    )
    add_approval_options(parser)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list each MCP tool withheld for want of approval, not only their count (and, "
        "in verity serve, show llama.cpp's own log)",
    )


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mcp-config",
        type=config_path,
        metavar="FILE",
        help="MCP servers JSON file (mcpServers or VS Code's servers), or 'claude' for Claude "
        "Desktop's own (default: $VERITY_MCP_CONFIG or mcp.json in the config dir)",
    )
    parser.add_argument(
        "--servers",
        type=server_names,
        metavar="A,B",
        help="use only these servers of the config (comma-separated names)",
    )
    parser.add_argument(
        "--mcp-startup-timeout",
        type=float,
        metavar="SECONDS",
        help=f"time each MCP server gets to start and list its tools ({DEFAULT_STARTUP_TIMEOUT:g}; "
        'a server\'s "startupTimeout" wins)',
    )


def add_approval_options(parser: argparse.ArgumentParser) -> None:
    """`--allow PATTERN` and `--trust SERVER`: which MCP tools run without asking."""
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run MCP tools matching PATTERN without asking (repeatable; wildcards: 'time__*')",
    )
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="SERVER",
        help="believe this MCP server's read-only hints, so its read-only tools run without "
        'asking (repeatable; as "trust": true in the config)',
    )


def add_mcp_commands(commands: Any) -> None:
    """The `verity mcp` command group (`commands` is the parser's subparsers object)."""
    mcp = commands.add_parser("mcp", help="list, call, debug and import MCP servers")
    actions = mcp.add_subparsers(dest="mcp_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="servers with their era, tools and health")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    call = actions.add_parser("call", help="call one tool and print its result")
    call.add_argument("server")
    call.add_argument("tool")
    call.add_argument("--args", default="{}", help='arguments as a JSON object ("{}")')
    read = actions.add_parser("read", help="read one resource of a server")
    read.add_argument("server")
    read.add_argument("uri")
    prompt = actions.add_parser("prompt", help="get one prompt of a server, filled in")
    prompt.add_argument("server")
    prompt.add_argument("name")
    prompt.add_argument("--args", default="{}", help="prompt arguments as a JSON object")
    for parser in (listing, call, read, prompt):
        _add_config_options(parser)
    add_approval_options(listing)
    mcp.set_defaults(handler=mcp_command)
    add_import_action(actions)  # its own handler


def mcp_command(args: argparse.Namespace) -> int:
    """Run one `verity mcp` action; returns the exit code.

    Raises:
        UserError: bad config, unknown server, or arguments that are not a JSON object.
        MCPServerError: the named server could not be started.
    """
    _report_to_stderr()
    config = _config(args, required=True)
    if args.mcp_command == "list":
        gate = approval_gate(config, ask=_ask_user_for_approval, allow=args.allow)
        code = _connected(config, None, lambda toolset: _list(toolset, gate, as_json=args.json))
        return EXIT_SERVER_FAILED if config.errors else code
    server = args.server
    if server not in {s.name for s in config.servers}:
        known = ", ".join(s.name for s in config.servers) or "none"
        raise UserError(
            f"No MCP server {server!r} in the config. Servers: {known}.", field="server"
        )
    if args.mcp_command == "call":
        arguments = _json_object(args.args)
        return _connected(config, server, lambda t: _call(t, server, args.tool, arguments))
    if args.mcp_command == "read":
        return _connected(config, server, lambda t: _print(t.read_resource(server, args.uri)))
    arguments = {k: str(v) for k, v in _json_object(args.args).items()}
    return _connected(config, server, lambda t: _print(t.get_prompt(server, args.name, arguments)))


def terminal_approvals(args: argparse.Namespace, config: MCPConfig) -> Approvals:
    """Approvals for `verity run`: asked on the terminal; with no terminal, tools that need one
    are withheld and said on stderr in one line (each with -v).
    """
    interactive = sys.stdin.isatty()
    return Approvals(
        ask=_ask_user_for_approval if interactive else None,
        elicitation=_ask_user_for_input if interactive else None,
        on_withheld=_WithheldNotice(
            [s.name for s in config.servers],
            trusted=[s.name for s in config.servers if s.trusted],
            verbose=args.verbose,
        ),
    )


def configured_servers(args: argparse.Namespace) -> MCPConfig:
    """The servers of the `--mcp-config` file (required), else of the default one (optional):
    only those `--servers` names, with those `--trust` names trusted, each given
    `--mcp-startup-timeout` unless its entry says otherwise.

    Broken entries and ignored keys are reported on stderr; broken entries are skipped.

    Raises:
        UserError: the file is missing (when named), unreadable or not an MCP servers file, or
            `--trust` or `--servers` names a server it does not have.
    """
    _report_to_stderr()
    return _config(args, required=args.mcp_config is not None)


class _WithheldNotice:
    """Says on stderr, in one line, how many tools nobody could approve, of which servers, and
    how to allow them; with `verbose`, each tool and why. Tools told about once are not again."""

    def __init__(
        self, servers: Sequence[str], *, trusted: Sequence[str] = (), verbose: bool = False
    ) -> None:
        self._trusted = set(trusted)
        self._prefixes = tool_prefixes(servers)
        self._servers = {prefix: name for name, prefix in self._prefixes.items()}
        self._verbose = verbose
        self._told: set[str] = set()

    async def __call__(self, withheld: list[ApprovalDecision]) -> None:
        new = [d for d in withheld if d.tool not in self._told]
        if not new:
            return
        self._told.update(d.tool for d in new)
        servers: dict[str, int] = {}
        for decision in new:
            prefix = decision.tool.split("__", 1)[0]
            server = self._servers.get(prefix, prefix)
            servers[server] = servers.get(server, 0) + 1
        counts = ", ".join(f"{name} ({n})" for name, n in servers.items())
        first = next(iter(servers))
        pattern = shlex.quote(f"{self._prefixes.get(first, first)}__*")
        more = "" if self._verbose else "; -v lists them"
        untrusted = next((name for name in servers if name not in self._trusted), None)
        if untrusted is None:  # trusted already: what is withheld is not read-only
            how = f"They may change things: allow them with --allow {pattern}{more}."
        else:
            how = (
                f"Run a server's read-only tools with --trust {shlex.quote(untrusted)}, or any "
                f"with --allow {pattern}{more}."
            )
        print(
            printable(
                f"verity: {_count(len(new), 'MCP tool')} withheld (they need approval and stdin "
                f"is not a terminal) from {counts}. {how}"
            ),
            file=sys.stderr,
        )
        if self._verbose:
            for decision in new:
                print(printable(f"verity:   {decision.tool}: {decision.reason}"), file=sys.stderr)


def _config(args: argparse.Namespace, *, required: bool) -> MCPConfig:
    options: dict[str, Any] = {"trust": getattr(args, "trust", ()), "only": args.servers}
    if args.mcp_startup_timeout is not None:
        if not 0 < args.mcp_startup_timeout <= 3600:
            raise UserError(
                "--mcp-startup-timeout must be between 0 and 3600 seconds, not "
                f"{args.mcp_startup_timeout:g}.",
                field="mcp_startup_timeout",
            )
        options["connect_timeout"] = args.mcp_startup_timeout
    path = args.mcp_config or default_mcp_config_path()
    config = load_mcp_config(path, required=required, **options)
    for warning in config.ignored:
        print(printable(f"verity: warning: {warning}"), file=sys.stderr)
    for error in config.errors:
        print(f"verity: warning: {error} (skipped)", file=sys.stderr)
    return config


def _connected(config: MCPConfig, only: str | None, action: Callable[[MCPToolset], Any]) -> int:
    from mcp import MCPError  # the MCP SDK (~1 s): only for the commands that connect

    from verity.tools.mcp import MCPToolset

    servers = [s for s in config.servers if only is None or s.name == only]

    async def main() -> int:
        async with MCPToolset(servers, errlog=server_log()) as toolset:
            if only is not None:
                (status,) = toolset.status()
                if status.state != "connected":
                    raise MCPServerError(
                        printable(f"MCP server {only!r} is not available: {status.error}"),
                        server=only,
                    )
            try:
                code: int = await action(toolset)
            except (ToolError, MCPError) as exc:  # a hung, crashed or failing server: one line
                name = only or "?"
                text = str(exc) if isinstance(exc, ToolError) else f"MCP server {name!r}: {exc}"
                raise MCPServerError(printable(text), server=name) from None
            return code

    return run_interruptibly(main)


async def _list(toolset: MCPToolset, gate: ApprovalGate, *, as_json: bool) -> int:
    servers = []
    for status in toolset.status():
        listing = asdict(status)
        listing["resources"], listing["prompts"] = await _listings(toolset, status.name)
        listing["grammars"] = _relaxed_grammars(toolset.tool_specs(status.name))
        specs = {**toolset.tool_specs(status.name), **toolset.added_specs(status.name)}
        listing["approval"] = {name: _decision(gate, spec) for name, spec in specs.items()}
        servers.append(listing)
    failed = any(server["state"] != "connected" for server in servers)
    code = EXIT_SERVER_FAILED if failed else 0
    if as_json:
        print(json.dumps({"servers": servers}))
        return code
    for server in servers:
        print(
            printable(
                f"{server['name']}  {server['transport']}  {server['state']}  "
                f"{server['protocol_version'] or '-'}  {_count(len(server['tools']), 'tool')}  "
                f"{_count(server['restarts'], 'restart')}"
            )
        )
        if server["error"]:
            print(printable(f"  error: {server['error']}"))
        added = [name for name in server["approval"] if name not in server["tools"]]
        for name in [*server["tools"], *added]:
            grammar = server["grammars"].get(name)
            note = f"  ({_describe_grammar(grammar)})" if grammar else ""
            approval = server["approval"][name]
            decision = f"{_DECISIONS[approval['decision']]}: {approval['reason']}"
            by_verity = " (added by Verity)" if name in added else ""
            print(printable(f"  tool: {name}{by_verity}{note}  [{decision}]"))
        for name, reason in server["unavailable"].items():
            print(printable(f"  unavailable tool: {name}: {reason}"))
        for kind in ("resources", "prompts"):
            for name in server[kind]:
                print(printable(f"  {kind[:-1]}: {name}"))
    if any(a["decision"] == "ask" for s in servers for a in s["approval"].values()):
        print(
            "Tools that ask are withheld when nobody can answer (stdin is not a terminal): "
            "run them with --trust SERVER (read-only ones) or --allow PATTERN."
        )
    return code


_DECISIONS = {"allow": "runs", "ask": "asks", "deny": "withheld"}


def _decision(gate: ApprovalGate, spec: ToolSpec) -> dict[str, str]:
    decision, by, reason = gate.decide(spec)
    return {"decision": decision, "by": by, "reason": reason}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _relaxed_grammars(specs: dict[str, ToolSpec]) -> dict[str, dict[str, Any]]:
    """The tools whose call grammar is not exact: level and dropped keywords."""
    grammars = {name: schema_grammar(spec.parameters) for name, spec in specs.items()}
    return {
        name: {"level": grammar.level, "dropped": list(grammar.dropped)}
        for name, grammar in grammars.items()
        if grammar.level != "exact"
    }


def _describe_grammar(grammar: dict[str, Any]) -> str:
    if grammar["level"] == "any":
        return "grammar: any JSON object; calls validated after generation"
    return f"grammar relaxed, not enforced: {', '.join(grammar['dropped'])}"


async def _listings(toolset: MCPToolset, server: str) -> tuple[list[str], list[str]]:
    """Resource URIs (and templates) and prompt names; empty where the server has none."""
    from mcp import MCPError

    resources: list[str] = []
    prompts: list[str] = []
    try:
        if toolset.capabilities(server).get("resources") is not None:
            listed, templates = await toolset.list_resources(server)
            resources = [str(r.uri) for r in listed] + [t.uri_template for t in templates]
        if toolset.capabilities(server).get("prompts") is not None:
            prompts = [p.name for p in await toolset.list_prompts(server)]
    except (ToolError, MCPError) as exc:  # the server's health line already tells the story
        warning = f"verity: warning: MCP server {server!r}: listing failed: {exc}"
        print(printable(warning), file=sys.stderr)
    return resources, prompts


async def _call(toolset: MCPToolset, server: str, tool: str, arguments: dict[str, Any]) -> int:
    try:
        result = await toolset.call(server, tool, arguments)
    except KeyError:
        raise UserError(f"MCP server {server!r} offers no tool {tool!r}.", field="tool") from None
    print(printable(result.content))
    if result.structured is not None:
        print(json.dumps({"structured": result.structured}), file=sys.stderr)
    return EXIT_TOOL_ERROR if result.is_error else 0


async def _print(text: Awaitable[str]) -> int:
    print(printable(await text))
    return 0


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--args is not JSON: {exc.msg}.", field="args") from None
    if not isinstance(value, dict):
        raise UserError('--args must be a JSON object such as {"a": 1}.', field="args")
    return value


def _report_to_stderr() -> None:
    logger = logging.getLogger("verity.mcp")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PrintableFormatter("verity: warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


class _PrintableFormatter(logging.Formatter):
    """Warnings quote servers' own errors: print them without escape sequences."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


async def _ask_user_for_approval(spec: ToolSpec, arguments: dict[str, Any]) -> Answer:
    question = printable(
        f"verity: allow {spec.name}({json.dumps(arguments)})? [y]es once, [a]lways, [N]o: "
    )
    reply = (await _ask(question)).strip().lower()
    return "always" if reply in ("a", "always") else "once" if reply in ("y", "yes") else "deny"


async def _ask_user_for_input(request: ElicitationRequest) -> ElicitationAnswer:
    asks = f"verity: MCP server {request.server!r} asks: {request.message}"
    print(printable(asks), file=sys.stderr)
    content: dict[str, Any] = {}
    for key, schema in request.schema.get("properties", {}).items():
        field = printable(f"  {key} ({schema.get('type', 'string')}), empty to decline: ")
        reply = await _ask(field)
        if not reply.strip():
            return ElicitationAnswer(action="decline")
        content[key] = _coerce(reply.strip(), schema.get("type"))
    return ElicitationAnswer(action="accept", content=content)


def _coerce(reply: str, kind: object) -> Any:
    if kind == "boolean":
        return reply.lower() in ("y", "yes", "true", "1")
    if kind in ("integer", "number"):
        try:
            return int(reply) if kind == "integer" else float(reply)
        except ValueError:
            return reply
    return reply


async def _ask(question: str) -> str:
    print(question, end="", file=sys.stderr, flush=True)
    return await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
