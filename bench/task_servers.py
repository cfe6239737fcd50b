"""The reference MCP servers of the task benchmark, each in its own environment (never Verity's
venv: they pin mcp 1.x or 2.x as they please), and the Claude Desktop configs that start them.

filesystem, memory and everything start through `npx -y PACKAGE@VERSION`; time, git, sqlite and
fetch through `uvx PACKAGE@VERSION`, uv itself installed into a venv of its own. Everything is
cached under `cache_dir()`; runs start the servers offline, so only `--setup` uses the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import platformdirs

from bench.task_fixtures import Fixture

__all__ = [
    "BROKEN",
    "SERVERS",
    "cache_dir",
    "mcp_config",
    "missing_setup",
    "setup",
]

UV_VERSION = "0.13.9"
NPM_PACKAGES = {
    "filesystem": "@modelcontextprotocol/server-filesystem@2026.8.31",
    "memory": "@modelcontextprotocol/server-memory@2026.8.31",
    "everything": "@modelcontextprotocol/server-everything@2026.8.31",
}
PYPI_PACKAGES = {
    "time": "mcp-server-time@2026.10.19",
    "git": "mcp-server-git@2026.10.19",
    "sqlite": "mcp-server-sqlite@2025.4.25",
    "fetch": "mcp-server-fetch@2026.10.24",
}
UV_WITH = {"sqlite": ["--with", "mcp<2"]}
"""mcp-server-sqlite 2025.4.25 asks for any mcp>=1 but fails at start under mcp 2 ('Server'
object has no attribute 'list_resources'); a user has to pin mcp<2 the same way."""
SERVERS = (*NPM_PACKAGES, *PYPI_PACKAGES)

EVERYTHING_MARKER = "teal-4417"
"""The value of BENCH_COLOR in the everything server's environment (a task asks for it)."""

BROKEN = {
    "filesystem:missing-dir": "the folder it serves does not exist",
    "git:not-a-repo": "--repository names a folder that is not a git repository",
    "sqlite:misspelt-package": "uvx is asked for mcp-server-sqlit, a package that is not there",
    "time:missing-command": "the command mcp-server-tme is not installed",
    "fetch:unknown-flag": "an option the server does not have (--allow-localhost)",
    "everything:no-such-version": "npx is asked for a version that does not exist",
}
"""Servers configured the way users get them wrong: each fails to start."""


def cache_dir() -> Path:
    """Where the servers' environments live ($VERITY_BENCH_ENVS, else the user cache)."""
    configured = os.environ.get("VERITY_BENCH_ENVS")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_cache_dir("verity")) / "bench-tasks"


def _uvx() -> Path:
    return cache_dir() / "uv-venv" / "bin" / "uvx"


def _env(offline: bool) -> dict[str, str]:
    """The package managers' caches (and, in runs, no network) for a server's environment."""
    cache = cache_dir()
    env = {
        "npm_config_cache": str(cache / "npm"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "UV_CACHE_DIR": str(cache / "uv"),
        "UV_NO_PROGRESS": "1",
    }
    if offline:
        env |= {"npm_config_offline": "true", "UV_OFFLINE": "1"}
    return env


def server_entry(spec: str, fixture: Fixture, *, offline: bool = True) -> dict[str, Any]:
    """The mcpServers entry for `spec`: a server name, or a `BROKEN` key."""
    name, _, broken = spec.partition(":")
    env = _env(offline)
    if name in NPM_PACKAGES:
        package = NPM_PACKAGES[name]
        if broken == "no-such-version":
            package = package.rsplit("@", 1)[0] + "@2099.1.1"
        args = ["-y", package]
        if name == "filesystem":
            args.append(str(fixture.root / "no-such-folder" if broken else fixture.files))
        elif name == "memory":
            env["MEMORY_FILE_PATH"] = str(fixture.memory)
        else:
            env["BENCH_COLOR"] = EVERYTHING_MARKER
        return {"command": "npx", "args": args, "env": env}
    package = PYPI_PACKAGES[name]
    extra = {
        "time": ["--local-timezone", "UTC"],
        "git": ["--repository", str(fixture.files if broken else fixture.repo)],
        "sqlite": ["--db-path", str(fixture.db)],
        "fetch": ["--allow-private-ips"] + (["--allow-localhost"] if broken else []),
    }[name]
    if broken == "misspelt-package":
        package = "mcp-server-sqlit"
    command = "mcp-server-tme" if broken == "missing-command" else str(_uvx())
    args = [*UV_WITH.get(name, []), package, *extra]
    if broken == "missing-command":
        args = extra
    return {"command": command, "args": args, "env": env}


def mcp_config(specs: tuple[str, ...], fixture: Fixture, path: Path) -> Path:
    """Write the Claude Desktop config that starts `specs` for `fixture` to `path`."""
    servers = {spec.partition(":")[0]: server_entry(spec, fixture) for spec in specs}
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


def missing_setup() -> str | None:
    """What `--setup` has not prepared yet, or None when the servers can run."""
    if shutil.which("npx") is None:
        return "npx is not installed (apt-get install -y nodejs npm)"
    if not _uvx().exists():
        return f"uv is not installed in {_uvx().parent.parent}"
    marker = cache_dir() / "ready.json"
    wanted = {**NPM_PACKAGES, **PYPI_PACKAGES}
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        return f"the servers are not cached in {cache_dir()}"
    return None


def setup(fixture: Fixture, *, timeout: float = 600) -> None:
    """Install uv and fetch every server once (the only step that uses the network).

    Raises:
        RuntimeError: npx is missing, or uv cannot be installed.
    """
    if shutil.which("npx") is None:
        raise RuntimeError("npx is not installed: apt-get install -y nodejs npm")
    cache = cache_dir()
    if not _uvx().exists():
        print(f"installing uv {UV_VERSION} into {cache / 'uv-venv'}", file=sys.stderr)
        venv.create(cache / "uv-venv", with_pip=True)
        _run(
            [str(cache / "uv-venv" / "bin" / "pip"), "install", "-q", f"uv=={UV_VERSION}"],
            timeout=timeout,
        )
    for name in SERVERS:
        print(f"fetching {name}", file=sys.stderr)
        entry = server_entry(name, fixture, offline=False)
        # `uvx PACKAGE --help` installs and exits; an npx server exits at the end of stdin
        probe = entry["args"]
        if name in PYPI_PACKAGES:
            probe = [*UV_WITH.get(name, []), PYPI_PACKAGES[name], "--help"]
        _run([entry["command"], *probe], env=entry["env"], timeout=timeout, check=False)
    (cache / "ready.json").write_text(json.dumps({**NPM_PACKAGES, **PYPI_PACKAGES}))


def _run(
    command: list[str], *, timeout: float, env: dict[str, str] | None = None, check: bool = True
) -> None:
    completed = subprocess.run(
        command,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if check and completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {completed.stderr.strip()[-500:]}")
