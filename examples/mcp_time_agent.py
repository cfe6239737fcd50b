"""Give the agent the tools of an MCP server, configured exactly as in Claude Desktop."""

import sys

from verity import LlamaCppModel, ModelSettings, embedded_model_path, parse_mcp_config, run_sync
from verity.tools.mcp import MCPToolset

config = parse_mcp_config(
    {
        "mcpServers": {
            "time": {
                "command": sys.executable,
                "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
                "trust": True,  # believe its read-only hints: its tools run without asking
            }
        }
    }
)
model = LlamaCppModel(embedded_model_path(), ModelSettings(temperature=0))
result = run_sync(
    "What time is it in Tokyo when it is 12:00 in UTC? Use the convert_time tool.",
    model=model,
    toolsets=[MCPToolset(config.servers)],
)
print(result.answer)
