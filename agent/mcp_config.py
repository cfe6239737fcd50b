"""The MCP server configs users already have (Claude Desktop, Cursor, Cline, VS Code) → specs.

```json
{"mcpServers": {
    "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}, "cwd": "/tmp"},
    "docs": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer ..."}},
    "old": {"type": "sse", "url": "http://127.0.0.1:9000/sse"}
}}
```
VS Code's layout (`{"servers": {...}, "inputs": [...]}`) reads the same. Other top-level keys
(Claude Desktop keeps its preferences there) are ignored. Per server, the keys other clients
add are understood: `type` (`stdio`, `http`, `sse`; a URL ending in `/sse` is SSE too),
`disabled`, `timeout` (seconds, Cline), `alwaysAllow` / `autoApprove` (approved tools),
`includeTools` / `excludeTools` (Gemini CLI), `envFile` (a dotenv file, VS Code and Cursor;
`env` wins over it); Verity's own are `trust` (believe the server's read-only hints) and
`startupTimeout` (seconds). Any other key (FastMCP's `description`) is ignored with one warning.
`${VAR}`, `${env:VAR}` and `${VAR:-default}` expand from the environment in `command`, `args`,
`env`, `url` and `headers`, as in Claude Code, Cursor and VS Code. A broken entry becomes a
`UserError` naming the server and the field, and the others still load; a broken file (not
JSON, a key given twice, not a regular file) is one `UserError`.

Reading a config imports neither the MCP SDK nor pydantic: the command line reads it to start
the servers while it imports them (`verity.tools.mcp._prestart`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import platformdirs
from dotenv import dotenv_values

from verity.errors import UserError
from verity.tools.mcp._names import tool_prefixes
from verity.tools.mcp._types import (
    HTTPServer,
    SamplingHandler,
    SamplingRequest,
    ServerSpec,
    StdioServer,
)

if TYPE_CHECKING:
    from verity.models.base import Model

_Fail = Callable[[str, str], UserError]
_SOURCE = "MCP config"

__all__ = [
    "MCPConfig",
    "claude_desktop_config_path",
    "config_servers",
    "default_mcp_config_path",
    "load_mcp_config",
    "model_sampling_handler",
    "parse_mcp_config",
    "read_config_json",
]

_COMMON = {"type", "transport", "disabled", "timeout", "alwaysAllow", "autoApprove"}
_COMMON |= {"includeTools", "excludeTools", "trust", "startupTimeout"}
_STDIO = {"command", "args", "env", "envFile", "cwd"}
_HTTP = {"url", "headers"}
_HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamableHttp"}
_MAX_TIMEOUT = 3600
_MAX_FILE_BYTES = 4 * 2**20
_VARIABLE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INPUT = re.compile(r"\$\{input:([^}]*)\}")


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
    ignored: list[str] = field(default_factory=list)
    """One warning per key Verity ignored (other clients' `description`, ...), naming servers."""


def claude_desktop_config_path() -> Path:
    """Where Claude Desktop keeps its config: `~/Library/Application Support/Claude` on macOS,
    `%APPDATA%\\Claude` on Windows, `~/.config/Claude` (XDG) elsewhere."""
    folder = platformdirs.user_config_dir("Claude", appauthor=False, roaming=True)
    return Path(folder) / "claude_desktop_config.json"


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
        if options.get("trust") or options.get("only"):
            option = "--trust" if options.get("trust") else "--servers"
            raise UserError(
                f"{option} names MCP servers, but there is no MCP config ({path} "
                "does not exist); give one with --mcp-config FILE.",
                field="mcp_config",
            )
        return MCPConfig()
    data = read_config_json(path)
    return parse_mcp_config(data, source=str(path), **options)


def read_config_json(path: Path) -> Any:
    """The parsed JSON of an MCP config file, read as `load_mcp_config` reads it (a regular,
    not huge, UTF-8 file; a key given twice in one object is an error).

    Raises:
        UserError: the file is missing, unreadable or not JSON.
    """
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
    return data


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


def config_servers(data: Any, source: str) -> Mapping[str, Any]:
    """The server entries of a parsed config, as written: `mcpServers` (Claude Desktop,
    Cursor, Cline...) or `servers` (VS Code).

    Raises:
        UserError: `data` holds neither object.
    """
    if isinstance(data, Mapping):
        servers = data.get("mcpServers", data.get("servers"))
        if isinstance(servers, Mapping):
            return servers
    raise UserError(
        f'{source}: expected an object with "mcpServers": {{"<name>": {{"command": ...}}}} '
        '(or VS Code\'s "servers").',
        field="mcpServers",
    )


def parse_mcp_config(
    data: Any,
    *,
    source: str = _SOURCE,
    trust: Collection[str] = (),
    only: Collection[str] | None = None,
    **options: Any,
) -> MCPConfig:
    """Turn the parsed JSON into server specs; each broken entry is skipped and reported.

    Args:
        data: The parsed JSON.
        source: What to call it in messages (the file's path).
        trust: Servers to trust (`--trust`), as `"trust": true` in their entries.
        only: Keep only these servers (`--servers`); None keeps all.
        **options: `StdioServer`/`HTTPServer` fields applied to every server.

    Raises:
        UserError: `data` has no `mcpServers` object, or `trust` or `only` names a server it
            does not have.
    """
    servers = config_servers(data, source)
    for option, names in (("--trust", trust), ("--servers", only or ())):
        if unknown := [name for name in names if name not in servers]:
            known = ", ".join(map(str, servers)) or "none"
            raise UserError(
                f"{option}: no MCP server {', '.join(map(repr, unknown))} in {source}. "
                f"Servers: {known}.",
                field=option[2:],
            )
    config = MCPConfig()
    approved: dict[str, list[str]] = {}
    ignored: dict[str, list[str]] = {}
    base = Path(source).parent if source != _SOURCE else Path()
    for name, entry in servers.items():
        if only is not None and name not in only:
            continue
        chosen = {**options, "trusted": True} if name in trust else options
        try:
            spec, approved[name] = _server(str(name), entry, chosen, base=base, ignored=ignored)
        except UserError as exc:
            config.errors.append(exc)
            config.skipped[str(name)] = exc.message.removeprefix(f"MCP server {str(name)!r}: ")
            continue
        if spec is not None:
            config.servers.append(spec)
    for key, names in ignored.items():
        where = ", ".join(map(repr, names))
        config.ignored.append(f"{source}: ignoring {key!r} (in {where}): Verity does not use it.")
    # the prefixes MCPToolset gives these servers' tools
    prefixes = tool_prefixes(spec.name for spec in config.servers)
    for spec in config.servers:
        config.approved.extend(f"{prefixes[spec.name]}__{tool}" for tool in approved[spec.name])
    return config


def _server(
    name: str,
    entry: Any,
    options: dict[str, Any],
    *,
    base: Path,
    ignored: dict[str, list[str]],
) -> tuple[ServerSpec | None, list[str]]:
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
    if kind not in (None, "stdio", "sse", *_HTTP_TYPES):
        raise fail("type", f'unknown type {kind!r}; use "stdio", "http" or "sse".')
    is_http = "url" in entry or kind in (*_HTTP_TYPES, "sse")
    if kind == "stdio" and is_http:
        raise fail("type", '"type": "stdio" needs a "command", not a "url".')
    allowed = _COMMON | (_HTTP if is_http else _STDIO)
    for key in entry:
        if key not in allowed:
            ignored.setdefault(key, []).append(name)
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
        return _http(name, entry, common, fail, sse=kind == "sse"), approved
    return _stdio(name, entry, common, fail, base=base), approved


def _stdio(
    name: str, entry: Mapping[str, Any], common: dict[str, Any], fail: _Fail, *, base: Path
) -> StdioServer:
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise fail("command", 'missing "command" (the program that starts the server).')
    command = _expand(command, "command", fail)
    env = {**_env_file(entry, fail, base), **_string_map(entry, "env", fail)}
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


def _http(
    name: str, entry: Mapping[str, Any], common: dict[str, Any], fail: _Fail, *, sse: bool
) -> HTTPServer:
    url = entry.get("url")
    url = _expand(url, "url", fail) if isinstance(url, str) else repr(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        example = "http://127.0.0.1:8000/mcp"
        raise fail("url", f'"url" must be an http(s) URL such as {example}, not {url!r}.')
    # no type given: an endpoint named /sse is the HTTP+SSE transport by convention
    sse = sse or ("type" not in entry and parts.path.rstrip("/").endswith("/sse"))
    headers = _string_map(entry, "headers", fail)
    return HTTPServer(name=name, url=url, headers=headers, sse=sse, **common)


def _env_file(entry: Mapping[str, Any], fail: _Fail, base: Path) -> dict[str, str]:
    """The variables of the `envFile` (VS Code, Cursor), a dotenv file; `env` wins over it."""
    if "envFile" not in entry:
        return {}
    given = entry["envFile"]
    if not isinstance(given, str) or not given.strip():
        raise fail("envFile", '"envFile" must be the path of a .env file.')
    path = base / _expand(given, "envFile", fail)
    if not path.is_file():
        raise fail("envFile", f"the env file {str(path)!r} does not exist.")
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


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

    if match := _INPUT.search(text):
        raise fail(
            key,
            f"${{input:{match.group(1)}}} is a VS Code prompt Verity cannot show; put the value "
            "in an environment variable and write ${env:NAME}.",
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
    from verity.messages import Message  # pydantic: not for reading a config

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
