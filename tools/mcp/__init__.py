"""The MCP client: `MCPToolset` offers the tools of any MCP server as `<server>__<tool>`.

The package's modules, each importing only those listed after it (an import-linter contract):

- `_toolset`: `MCPToolset` and `ServerStatus`, the one public class and what it reports.
- `_extras`: a server's resources and prompts, listed, read, and offered as read-only tools.
- `_callbacks`: answers to what servers ask of the client (elicitation, sampling).
- `_connection`: one supervised connection to one server (connect, notice death, restart).
- `_stdio`, `_streams`: the stdio transport, and streams that tell a closed line apart.
- `_render`: how MCP names and results look to the model.
- `_prestart`: stdio servers started before the SDK is imported, for a connection to take.
- `_limits`: bounds on what one server's tool list may take.
- `_stderr`, `_names`, `_types`: a server's stderr and its log, tool prefixes, and plain
  definitions of servers and of the callbacks' requests and answers.

The names below are imported when first used: `_types`, `_names`, `_stderr` and `_prestart` do
not import the MCP SDK (~1 s), so the command line can read a config and start its servers
before it does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verity.tools.mcp._callbacks import answer_with_defaults
    from verity.tools.mcp._connection import ServerUnavailable
    from verity.tools.mcp._names import allow_patterns, tool_prefixes
    from verity.tools.mcp._render import model_tool_name
    from verity.tools.mcp._stderr import server_log
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
    "server_log",
    "tool_prefixes",
]

_SOURCES = {
    "DEFAULT_STARTUP_TIMEOUT": "_types",
    "ElicitationAnswer": "_types",
    "ElicitationHandler": "_types",
    "ElicitationRequest": "_types",
    "HTTPServer": "_types",
    "MCPToolset": "_toolset",
    "SamplingHandler": "_types",
    "SamplingRequest": "_types",
    "ServerSpec": "_types",
    "ServerStatus": "_toolset",
    "ServerUnavailable": "_connection",
    "StdioServer": "_types",
    "allow_patterns": "_names",
    "answer_with_defaults": "_callbacks",
    "model_tool_name": "_render",
    "server_log": "_stderr",
    "tool_prefixes": "_names",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used (PEP 562)."""
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])
