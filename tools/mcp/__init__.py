"""The MCP client: `MCPToolset` offers the tools of any MCP server as `<server>__<tool>`.

The package's modules, each importing only those listed after it (an import-linter contract):

- `_toolset`: `MCPToolset` and `ServerStatus`, the one public class and what it reports.
- `_extras`: a server's resources and prompts, listed, read, and offered as read-only tools.
- `_callbacks`: answers to what servers ask of the client (elicitation, sampling).
- `_connection`: one supervised connection to one server (connect, notice death, restart).
- `_stdio`, `_streams`: the stdio transport, and streams that tell a closed line apart.
- `_render`: how MCP names and results look to the model.
- `_limits`: bounds on what one server's tool list may take.
- `_types`: plain definitions of servers and of the callbacks' requests and answers.
"""

from __future__ import annotations

from verity.tools.mcp._callbacks import answer_with_defaults
from verity.tools.mcp._connection import ServerUnavailable
from verity.tools.mcp._render import allow_patterns, model_tool_name, tool_prefixes
from verity.tools.mcp._toolset import MCPToolset, ServerStatus
from verity.tools.mcp._types import (
    DEFAULT_STARTUP_TIMEOUT,
    ElicitationAnswer,
    ElicitationHandler,
    ElicitationRequest,
    HTTPServer,
    SamplingHandler,
    SamplingRequest,
    ServerSpec,
    StdioServer,
)

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "ElicitationAnswer",
    "ElicitationHandler",
    "ElicitationRequest",
    "HTTPServer",
    "MCPToolset",
    "SamplingHandler",
    "SamplingRequest",
    "ServerSpec",
    "ServerStatus",
    "ServerUnavailable",
    "StdioServer",
    "allow_patterns",
    "answer_with_defaults",
    "model_tool_name",
    "tool_prefixes",
]
