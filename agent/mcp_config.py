"""The `mcpServers` JSON that Claude Desktop, Cursor and Cline users already have → server specs.

```json
{"mcpServers": {
    "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}, "cwd": "/tmp"},
    "docs": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer ..."}}
}}
```
Other top-level keys (Claude Desktop keeps its preferences there) are ignored. Per server, the
keys other clients add are understood: `type`, `disabled`, `timeout` (seconds, Cline),
`alwaysAllow` / `autoApprove` (approved tools), `includeTools` / `excludeTools` (Gemini CLI);
Verity's own are `trust` (believe the server's read-only hints) and `startupTimeout` (seconds).
`${VAR}` and `${VAR:-default}` expand from the environment in `command`, `args`, `env`, `url`
and `headers`, as in Claude Code and Cursor. A broken entry becomes a `UserError` naming the
server and the field, and the others still load; a broken file (not JSON, a key given twice,
not a regular file) is one `UserError`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from verity.errors import UserError
from verity.messages import Message
from verity.models.base import Model
from verity.tools.mcp import (
    HTTPServer,
    SamplingHandler,
    SamplingRequest,
    ServerSpec,
    StdioServer,
    tool_prefixes,
)

_Fail = Callable[[str, str], UserError]

__all__ = [
    "MCPConfig",
    "default_mcp_config_path",
    "load_mcp_config",
    "model_sampling_handler",
    "parse_mcp_config",
]

_COMMON = {"type", "transport", "disabled", "timeout", "alwaysAllow", "autoApprove"}
_COMMON |= {"includeTools", "excludeTools", "trust", "startupTimeout"}
_STDIO = {"command", "args", "env", "cwd"}
_HTTP = {"url", "headers"}
_HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamableHttp"}
_MAX_TIMEOUT = 3600
_MAX_FILE_BYTES = 4 * 2**20
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class MCPConfig:
    """The servers of one `mcpServers` file, and the entries that had to be skipped."""

    servers: list[ServerSpec] = field(default_factory=list)
    errors: list[UserError] = field(default_factory=list)
    """One per skipped server; each names the server (`.field` is `mcpServers.<name>.<key>`)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """The skipped servers by name, with why (the error's text after the server's name)."""
    approved: list[str] = field(default_factory=list)
    """`server__tool` patterns the file pre-approves (`alwaysAllow`, `autoApprove`)."""


def default_mcp_config_path() -> Path:
    """`$VERITY_MCP_CONFIG`, else `mcp.json` in the user config directory."""
    configured = os.environ.get("VERITY_MCP_CONFIG")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_config_dir("verity")) / "mcp.json"


def load_mcp_config(path: Path, *, required: bool = True, **options: Any) -> MCPConfig:
    """Read and parse an `mcpServers` file.

    Args:
        path: The JSON file.
        required: When False, a missing file means no servers.
        **options: `StdioServer`/`HTTPServer` fields applied to every server
            (e.g. `connect_timeout=5`).

    Raises:
        UserError: the file is missing (when required), unreadable, not JSON, or has no
            `mcpServers` object.
    """
    if not path.exists() and not required:
        return MCPConfig()
    text = _read_config(path)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"MCP config {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}.",
            field="mcp_config",
        ) from None
    except _DuplicateKey as exc:
        raise UserError(
            f"MCP config {path}: {exc.key!r} is given twice in one object (another client would "
            "silently take the last); keep one.",
            field="mcp_config",
        ) from None
    except RecursionError:
        raise UserError(
            f"MCP config {path} is nested too deeply to be an mcpServers file.",
            field="mcp_config",
        ) from None
    return parse_mcp_config(data, source=str(path), **options)


def _read_config(path: Path) -> str:
    """The file's text: a regular file (never a FIFO or a device), not huge, UTF-8 (BOM ok)."""
    fail = f"Cannot read MCP config {path}"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{fail}: it is not a regular file.", field="mcp_config")
        if info.st_size > _MAX_FILE_BYTES:
            raise UserError(
                f"{fail}: {info.st_size} bytes is too large for an mcpServers file.",
                field="mcp_config",
            )
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"MCP config {path} does not exist.", field="mcp_config") from None
    except OSError as exc:
        raise UserError(f"{fail}: {exc.strerror or exc}.", field="mcp_config") from None
    try:
        return data.decode("utf-8-sig")  # editors on Windows save a BOM
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{fail}: it is not UTF-8 text (byte {exc.start}).", field="mcp_config"
        ) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def parse_mcp_config(data: Any, *, source: str = "MCP config", **options: Any) -> MCPConfig:
    """Turn the parsed JSON into server specs; each broken entry is skipped and reported.

    Raises:
        UserError: `data` has no `mcpServers` object.
    """
    servers = data.get("mcpServers") if isinstance(data, Mapping) else None
    if not isinstance(servers, Mapping):
        raise UserError(
            f'{source}: expected an object with "mcpServers": {{"<name>": {{"command": ...}}}}.',
            field="mcpServers",
        )
    config = MCPConfig()
    approved: dict[str, list[str]] = {}
    for name, entry in servers.items():
        try:
            spec, approved[name] = _server(str(name), entry, options)
        except UserError as exc:
            config.errors.append(exc)
            config.skipped[str(name)] = exc.message.removeprefix(f"MCP server {str(name)!r}: ")
            continue
        if spec is not None:
            config.servers.append(spec)
    # the prefixes MCPToolset gives these servers' tools
    prefixes = tool_prefixes(spec.name for spec in config.servers)
    for spec in config.servers:
        config.approved.extend(f"{prefixes[spec.name]}__{tool}" for tool in approved[spec.name])
    return config


def _server(name: str, entry: Any, options: dict[str, Any]) -> tuple[ServerSpec | None, list[str]]:
    def fail(key: str, problem: str) -> UserError:
        where = "mcpServers" + (f".{name}" if name else "") + (f".{key}" if key else "")
        return UserError(f"MCP server {name!r}: {problem}", field=where)

    if not name.strip():
        raise fail("", "give the server a name.")
    if not isinstance(entry, Mapping):
        raise fail("", 'expected an object such as {"command": "...", "args": [...]}.')
    if _flag(entry, "disabled", fail):
        return None, []
    kind = entry.get("type", entry.get("transport"))
    if kind == "sse":
        raise fail("type", "the SSE transport is not supported; use streamable HTTP.")
    is_http = "url" in entry or kind in _HTTP_TYPES
    allowed = _COMMON | (_HTTP if is_http else _STDIO)
    for key in entry:
        if key not in allowed:
            keys = ", ".join(sorted(allowed))
            raise fail(key, f"unknown key {key!r}. Allowed here: {keys}.")
    if kind not in (None, "stdio", *_HTTP_TYPES) or (kind == "stdio" and is_http):
        raise fail("type", f'unknown type {kind!r}; use "stdio" or "http".')
    common: dict[str, Any] = dict(options)
    for key, option in (("timeout", "timeout"), ("startupTimeout", "connect_timeout")):
        if (seconds := _seconds(entry, key, fail)) is not None:
            common[option] = seconds
    if _flag(entry, "trust", fail):
        common["trusted"] = True
    if "includeTools" in entry:
        common["include_tools"] = frozenset(_strings(entry, "includeTools", fail))
    common["exclude_tools"] = frozenset(_strings(entry, "excludeTools", fail))
    approved = _strings(entry, "alwaysAllow", fail) + _strings(entry, "autoApprove", fail)
    if is_http:
        return _http(name, entry, common, fail), approved
    return _stdio(name, entry, common, fail), approved


def _stdio(name: str, entry: Mapping[str, Any], common: dict[str, Any], fail: _Fail) -> StdioServer:
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise fail("command", 'missing "command" (the program that starts the server).')
    command = _expand(command, "command", fail)
    env = _string_map(entry, "env", fail)
    cwd = entry.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not Path(cwd).is_dir()):
        raise fail("cwd", f"{cwd!r} is not a directory.")
    search_path = env.get("PATH", os.environ.get("PATH"))
    if os.sep in command:
        found = Path(cwd or ".", command).exists()
    else:
        found = shutil.which(command, path=search_path) is not None
    if not found:
        raise fail("command", f"command {command!r} not found. Install it or give its full path.")
    return StdioServer(
        name=name,
        command=command,
        args=tuple(_expand(arg, "args", fail) for arg in _strings(entry, "args", fail)),
        env=env,
        cwd=cwd,
        **common,
    )


def _http(name: str, entry: Mapping[str, Any], common: dict[str, Any], fail: _Fail) -> HTTPServer:
    url = entry.get("url")
    url = _expand(url, "url", fail) if isinstance(url, str) else repr(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        example = "http://127.0.0.1:8000/mcp"
        raise fail("url", f'"url" must be an http(s) URL such as {example}, not {url!r}.')
    return HTTPServer(name=name, url=url, headers=_string_map(entry, "headers", fail), **common)


def _strings(entry: Mapping[str, Any], key: str, fail: _Fail) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(key, f'"{key}" must be a list of strings.')
    return list(value)


def _string_map(entry: Mapping[str, Any], key: str, fail: _Fail) -> dict[str, str]:
    value = entry.get(key, {})
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise fail(key, f'"{key}" must be an object of strings.')
    return {k: _expand(v, f"{key}.{k}", fail) for k, v in value.items()}


def _expand(text: str, key: str, fail: _Fail) -> str:
    """`${VAR}` and `${VAR:-default}` from the environment; an unset VAR without default fails."""

    def value(match: re.Match[str]) -> str:
        variable, default = match.group(1), match.group(2)
        found = os.environ.get(variable)
        if found is not None and (found or default is None):
            return found
        if default is not None:
            return default
        raise fail(
            key,
            f"environment variable {variable} is not set. Set it, or give a default: "
            f"${{{variable}:-default}}.",
        )

    return _VARIABLE.sub(value, text)


def _flag(entry: Mapping[str, Any], key: str, fail: _Fail) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise fail(key, f'"{key}" must be true or false (no quotes), not {value!r}.')
    return value


def _seconds(entry: Mapping[str, Any], key: str, fail: _Fail) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    # bool is an int in Python: `"timeout": true` must not mean one second
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= _MAX_TIMEOUT
    ):
        raise fail(key, f"give seconds between 0 and {_MAX_TIMEOUT}, not {value!r}.")
    return float(value)


def model_sampling_handler(model: Model) -> SamplingHandler:
    """Answer MCP servers' sampling requests with `model` (no tools offered to it)."""

    async def sample(request: SamplingRequest) -> str:
        messages = [
            Message(role="user" if role == "user" else "assistant", content=text)
            for role, text in request.messages
        ]
        if request.system_prompt:
            messages.insert(0, Message(role="system", content=request.system_prompt))
        response = await model.respond(messages, [], tool_choice="none")
        return response.content

    return sample
