"""verity-toolbox: Verity's built-in tools served over MCP.

Run it over stdio with `python -m verity.servers.toolbox`, or over streamable HTTP with `--http`
(127.0.0.1:8766 unless `--host`/`--port` say otherwise; a bearer token from `--token` or
VERITY_SERVE_TOKEN is required beyond loopback). Each tool keeps the name, description
and read-only flag of its `verity.tools.builtin` original, and a `verity.tools.base.ToolError`
reaches the client as an `is_error` result carrying the same message.
"""

# No `from __future__ import annotations`: MCPServer reads the `Annotated` parameter metadata at
# registration time.
import argparse
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError as MCPToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from verity.errors import UserError
from verity.servers._http import serve_http
from verity.tools.base import ToolError
from verity.tools.builtin.calculator import calculator as builtin_calculator

__all__ = ["calculator", "main", "server"]

server = MCPServer("verity-toolbox", log_level="WARNING")
"""The MCP server; pass it to `mcp.Client` to use it in-process."""

_EXPRESSION_DESCRIPTION: str = builtin_calculator.spec.parameters["properties"]["expression"][
    "description"
]


@server.tool(
    description=builtin_calculator.spec.description,
    # closed world: the result depends on the expression alone (Verity's answer checks then
    # know a made-up number fed to it makes its result made up too)
    annotations=ToolAnnotations(
        read_only_hint=builtin_calculator.spec.read_only, open_world_hint=False
    ),
)
async def calculator(expression: Annotated[str, Field(description=_EXPRESSION_DESCRIPTION)]) -> str:
    """Evaluate an arithmetic expression with the built-in calculator.

    Args:
        expression: Arithmetic such as "(3.5 + 2) * 4".

    Returns:
        The result, formatted as the built-in tool formats it.

    Raises:
        mcp.server.mcpserver.exceptions.ToolError: the expression is not valid arithmetic, is too
            large, or divides by zero; the client gets an `is_error` result with the message.
    """
    try:
        return str(await builtin_calculator.call({"expression": expression}))
    except ToolError as exc:
        raise MCPToolError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m verity.servers.toolbox [--http [--host H] [--port P]]`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m verity.servers.toolbox",
        description="Serve Verity's built-in tools (calculator) over MCP: stdio, or --http.",
    )
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port to bind (8766)")
    parser.add_argument(
        "--token",
        default=os.environ.get("VERITY_SERVE_TOKEN") or None,
        help="bearer token clients must send; required beyond loopback ($VERITY_SERVE_TOKEN)",
    )
    args = parser.parse_args(argv)
    try:
        if args.http:
            anyio.run(lambda: serve_http(server, host=args.host, port=args.port, token=args.token))
        else:
            server.run()
    except UserError as exc:
        print(f"verity-toolbox: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
