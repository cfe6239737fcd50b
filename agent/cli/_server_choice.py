"""The MCP config and servers a command line names (`--mcp-config`, `--servers`).

Light (no SDK, no pydantic): read by the option parser and, before the imports, by
`_early_servers`.
"""

from __future__ import annotations

from pathlib import Path

from verity.mcp_config import claude_desktop_config_path

__all__ = ["config_path", "server_names"]


def config_path(text: str) -> Path:
    """A path, or `claude`: Claude Desktop's config file where this platform keeps it."""
    if text.lower() == "claude" and not Path(text).exists():
        return claude_desktop_config_path()
    return Path(text)


def server_names(text: str) -> list[str]:
    """`a, b,c` → `["a", "b", "c"]`."""
    return [name.strip() for name in text.split(",") if name.strip()]
