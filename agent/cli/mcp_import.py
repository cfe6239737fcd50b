"""`verity mcp import`: copy the MCP servers of other clients' config files into Verity's own.

```text
verity mcp import claude                  Claude Desktop's claude_desktop_config.json
verity mcp import cursor                  ~/.cursor/mcp.json
verity mcp import vscode                  .vscode/mcp.json of the current folder ("servers")
verity mcp import FILE ... [--dry-run] [--mcp-config TARGET]
```
Entries are merged by name and copied as written: a name the target already has is skipped
(said, with whether the two entries differ), never overwritten. VS Code's `${workspaceFolder}`
becomes the workspace's path, as VS Code would substitute it. An entry Verity could not start
as it stands (a VS Code `${input:...}` prompt, an unset `${VAR}`) is still imported, with a
warning naming what to fix.
"""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verity.errors import UserError
from verity.mcp_config import (
    claude_desktop_config_path,
    config_servers,
    default_mcp_config_path,
    parse_mcp_config,
    read_config_json,
)
from verity.terminal import printable
from verity.tools._atomic import rewrite

__all__ = [
    "CLIENTS",
    "Import",
    "add_import_action",
    "client_config_path",
    "import_command",
    "merge",
]

CLIENTS = ("claude", "cursor", "vscode")
"""Clients whose config files `verity mcp import` finds by name."""


def client_config_path(client: str) -> Path:
    """Where `client` keeps its MCP servers: Claude Desktop's file where this platform keeps
    it, Cursor's global `~/.cursor/mcp.json`, VS Code's `.vscode/mcp.json` in the current folder.
    """
    if client == "claude":
        return claude_desktop_config_path()
    if client == "cursor":
        return Path.home() / ".cursor" / "mcp.json"
    if client == "vscode":
        return Path.cwd() / ".vscode" / "mcp.json"
    raise ValueError(f"unknown client {client!r}")


def add_import_action(actions: Any) -> None:
    """`verity mcp import` (`actions` is the `verity mcp` subparsers object)."""
    parser = actions.add_parser(
        "import", help="copy the servers of Claude Desktop, Cursor or VS Code into Verity's config"
    )
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="claude, cursor, vscode (.vscode/mcp.json here), or a config file",
    )
    parser.add_argument(
        "--mcp-config",
        type=Path,
        metavar="FILE",
        help="the config to import into (default: $VERITY_MCP_CONFIG or mcp.json in the "
        "config dir, which verity run reads)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be imported; write nothing"
    )
    parser.set_defaults(handler=import_command)


@dataclass
class Import:
    """The outcome of merging sources into a target's server entries."""

    servers: dict[str, Any]
    """The target's entries after the merge (the target's own first)."""
    added: list[tuple[str, Path]] = field(default_factory=list)
    """Each added server, with the file it came from."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Each server left out, with why."""


def merge(target: Mapping[str, Any], sources: list[Path], target_path: Path) -> Import:
    """Merge the servers of `sources` into `target`'s entries, by name, first one wins.

    Raises:
        UserError: a source is missing, not JSON, or holds no `mcpServers`/`servers` object.
    """
    result = Import(servers=dict(target))
    origin: dict[str, Path] = {}
    for path in sources:
        entries = config_servers(read_config_json(path), str(path))
        workspace = _vscode_workspace(path)
        for name, written in entries.items():
            entry = _substituted(written, workspace) if workspace else written
            if not isinstance(entry, Mapping):
                result.skipped.append((name, f"its entry in {path} is not an object"))
            elif name in origin:
                result.skipped.append((name, f"already imported from {origin[name]}"))
            elif name in result.servers:
                same = "the same entry" if result.servers[name] == entry else "a different entry"
                result.skipped.append((name, f"{target_path} already has it ({same})"))
            else:
                result.servers[name] = entry
                result.added.append((name, path))
                origin[name] = path
    return result


def import_command(args: argparse.Namespace) -> int:
    """Run `verity mcp import`; returns the exit code.

    Raises:
        UserError: a source is missing or broken, or the target is not an MCP config.
    """
    sources = [_source_path(source) for source in args.sources]
    target_path: Path = args.mcp_config or default_mcp_config_path()
    key, target = _target(target_path)
    result = merge(target, sources, target_path)
    for name, path in result.added:
        print(printable(f"{'would add' if args.dry_run else 'added'} {name} (from {path})"))
    for name, why in result.skipped:
        print(printable(f"skipped {name}: {why}"))
    for name, _ in result.added:
        _warn_if_unusable(name, result.servers[name], target_path)
    count = f"{len(result.added)} server{'s' * (len(result.added) != 1)}"
    if args.dry_run:
        print(f"dry run: {count} would be imported into {target_path}; nothing written")
    elif result.added:
        _write(target_path, key, {name: result.servers[name] for name, _ in result.added})
        print(f"imported {count} into {target_path}")
    else:
        print(f"nothing to import into {target_path}")
    return 0


def _source_path(source: str) -> Path:
    path = Path(source)
    if source.lower() in CLIENTS and not path.exists():
        path = client_config_path(source.lower())
        if not path.exists():
            raise UserError(
                f"{source}: there is no {path}; give the path of the config file to import.",
                field="sources",
            )
    return path


def _target(path: Path) -> tuple[str, dict[str, Any]]:
    """The key the target keeps its servers under, and its entries ({} for a new file)."""
    if not path.exists():
        return "mcpServers", {}
    data = read_config_json(path)
    servers = config_servers(data, str(path))
    key = "mcpServers" if "mcpServers" in data else "servers"
    return key, dict(servers)


def _write(path: Path, key: str, added: dict[str, Any]) -> None:
    """Add the entries under `key`, keeping all else the target holds, under the file's lock."""

    def change(current: bytes | None) -> bytes:
        data = json.loads(current) if current else {}
        servers = data.get(key, {})
        # the file's own entries first; an entry written meanwhile under a name wins
        data[key] = servers | {name: e for name, e in added.items() if name not in servers}
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()

    try:
        rewrite(path, change)
    except OSError as exc:
        raise UserError(
            f"Cannot write {path}: {exc.strerror or exc}.", field="mcp_config"
        ) from None


def _warn_if_unusable(name: str, entry: Any, target: Path) -> None:
    config = parse_mcp_config({"mcpServers": {name: entry}}, source=str(target))
    for error in config.errors:
        print(printable(f"verity: warning: {error} Fix it in {target}."), file=sys.stderr)


def _vscode_workspace(path: Path) -> Path | None:
    """The workspace folder of a VS Code `.vscode/mcp.json`, else None."""
    resolved = path.resolve()
    return resolved.parent.parent if resolved.parent.name == ".vscode" else None


def _substituted(value: Any, workspace: Path) -> Any:
    """`value` with VS Code's `${workspaceFolder}` replaced by the workspace's path."""
    if isinstance(value, str):
        return value.replace("${workspaceFolder}", os.fspath(workspace))
    if isinstance(value, list):
        return [_substituted(item, workspace) for item in value]
    if isinstance(value, Mapping):
        return {k: _substituted(v, workspace) for k, v in value.items()}
    return value
