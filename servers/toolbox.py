"""verity-toolbox: Verity's built-in tools served over MCP.

Run it over stdio with `python -m verity.servers.toolbox`. Each tool keeps the name, description
and read-only flag of its `verity.tools.builtin` original, and a `verity.tools.base.ToolError`
reaches the client as an `is_error` result carrying the same message.
"""

# No `from __future__ import annotations`: MCPServer reads the `Annotated` parameter metadata at
# registration time.
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError as MCPToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from verity.tools.base import ToolError
from verity.tools.builtin.calculator import calculator as builtin_calculator

__all__ = ["calculator", "server"]

server = MCPServer("verity-toolbox", log_level="WARNING")
"""The MCP server; pass it to `mcp.Client` to use it in-process."""

_EXPRESSION_DESCRIPTION: str = builtin_calculator.spec.parameters["properties"]["expression"][
    "description"
]


@server.tool(
    description=builtin_calculator.spec.description,
    annotations=ToolAnnotations(read_only_hint=builtin_calculator.spec.read_only),
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


if __name__ == "__main__":
    server.run()
