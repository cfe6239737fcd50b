"""Give the agent the tools of an MCP server, configured exactly as in Claude Desktop."""

import importlib.util
import sys

from verity import Agent, MCPToolset, parse_mcp_config

# The reference time server: from this Python when installed here (`pip install ".[test]"`),
# else from PyPI through uv's `uvx`, in an environment of its own.
if importlib.util.find_spec("mcp_server_time"):
    command, args = sys.executable, ["-m", "mcp_server_time"]
else:
    command, args = "uvx", ["mcp-server-time"]
config = parse_mcp_config(
    {
        "mcpServers": {
            "time": {
                "command": command,
                "args": [*args, "--local-timezone", "UTC"],
                "trust": True,  # believe its read-only hints: its tools run without asking
                "startupTimeout": 60,  # seconds to start and list its tools (120 by default)
            }
        }
    }
)
agent = Agent(toolsets=[MCPToolset(config.servers)])
result = agent.run_sync(
    "What time is it in Tokyo when it is 12:00 in UTC? Use the convert_time tool."
)
if result.status == "tools_unavailable":  # without its tools the answer would be made up
    sys.exit(f"{result.reason}. Install uv (uvx starts the server) or mcp-server-time.")
if result.status != "answered":
    sys.exit(f"No reliable answer ({result.status}): {result.reason}")
print(result.answer)
agent.close()
