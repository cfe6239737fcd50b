"""Stdio servers started before the MCP SDK is imported, for the run's connections to take.

A `verity run` spends ~2 s importing the MCP SDK and llama.cpp before its first connection
starts a server, and an `npx -y` server takes ~1.7 s more to answer. The command line reads its
MCP config first and starts the stdio servers (`prestart`), so they come up while Python
imports. A connection that starts a server first asks for a process started for exactly its
command, arguments, environment and directory (`adopt`): it gets it once, or starts its own.

A process nobody took (the command line failed before the run began, or the run never
connected) is stopped at exit: end of input, then as long as its start-up budget allows (at
most `_UNUSED_WAIT` seconds) to exit by itself, then its process group is killed. The wait is
for `npx -y` and `uvx`: killed while they install a package, they leave a broken cache that
fails every later start. Light on purpose: no SDK, no pydantic.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, TextIO

from verity.tools.mcp._stderr import StderrPump
from verity.tools.mcp._types import ServerSpec, StdioServer

__all__ = ["Prestarted", "adopt", "inherited_environment", "prestart", "server_environment"]

_INHERITED = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
"""What a POSIX server inherits of Verity's environment: the SDK's `DEFAULT_INHERITED_ENV_VARS`
(a test keeps the two the same)."""
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
_NETWORK = (*_PROXIES, *(name.lower() for name in _PROXIES), "SSL_CERT_FILE", "SSL_CERT_DIR")
_NETWORK += ("REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
"""Passed on besides the minimal environment: a server that npx or uvx fetches on its first
start needs the proxy and CA bundle everything else here uses."""
_UNUSED_WAIT = 10.0
"""Longest wait, at exit, for an unused server to end by itself after its end of input."""
_SAY_AFTER = 1.0
"""Seconds of that wait before stderr says what the command is waiting for."""


@dataclass
class Prestarted:
    """A server process started ahead, and the thread copying its stderr to the server log."""

    spec: StdioServer
    process: subprocess.Popen[bytes]
    pump: StderrPump | None
    started: float
    """`time.monotonic()` at its start."""

    @property
    def stdin(self) -> IO[bytes]:
        assert self.process.stdin is not None
        return self.process.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self.process.stdout is not None
        return self.process.stdout


_waiting: dict[tuple[object, ...], Prestarted] = {}
_lock = threading.Lock()


def inherited_environment() -> dict[str, str]:
    """The part of this process's environment a POSIX server inherits (as the SDK's
    `get_default_environment`: shell functions are not passed on)."""
    found = {name: os.environ.get(name) for name in _INHERITED}
    return {k: v for k, v in found.items() if v is not None and not v.startswith("()")}


def server_environment(spec: StdioServer, inherited: Mapping[str, str]) -> dict[str, str]:
    """The environment a stdio server runs in: `inherited`, the network settings, its `env`."""
    network = {name: os.environ[name] for name in _NETWORK if name in os.environ}
    return {**inherited, **network, **spec.env}


def prestart(servers: Iterable[ServerSpec], errlog: TextIO) -> int:
    """Start each stdio server of `servers` now (POSIX only); returns how many started.

    A server that cannot be started is left for its connection to start, and to report.
    """
    if sys.platform == "win32":  # pragma: no cover - the SDK's Windows start is not this one
        return 0
    count = 0
    for spec in servers:
        if not isinstance(spec, StdioServer):
            continue
        env = server_environment(spec, inherited_environment())
        key = _key(spec, env)
        if key in _waiting:
            continue
        pump = StderrPump(spec.name, errlog)
        try:
            process = subprocess.Popen(
                [spec.command, *spec.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=pump.child_end(),
                env=env,
                cwd=spec.cwd,
                start_new_session=True,  # its group is killed as one, as `_stdio` does
            )
        except (OSError, ValueError):
            pump.abandon()
            continue
        pump.spawned()
        with _lock:
            if not _waiting:
                atexit.register(_stop_unused)
            _waiting[key] = Prestarted(spec, process, pump, time.monotonic())
        count += 1
    return count


def adopt(spec: StdioServer, env: Mapping[str, str]) -> Prestarted | None:
    """The process started ahead for this command, arguments, environment and directory, if
    there is one nobody took yet; it is the caller's from now on."""
    with _lock:
        return _waiting.pop(_key(spec, env), None)


def _key(spec: StdioServer, env: Mapping[str, str]) -> tuple[object, ...]:
    return (spec.command, tuple(spec.args), tuple(sorted(env.items())), spec.cwd)


def _stop_unused() -> None:
    """At exit: end each unused server's input, let it end, then kill its process group."""
    with _lock:
        unused = list(_waiting.values())
        _waiting.clear()
    for server in unused:
        with suppress(OSError):
            server.stdin.close()
    said, waiting_since = False, time.monotonic()
    for server in unused:
        deadline = server.started + min(server.spec.startup_timeout, _UNUSED_WAIT)
        while server.process.poll() is None and time.monotonic() < deadline:
            if not said and time.monotonic() - waiting_since > _SAY_AFTER:
                sys.stderr.write(  # at exit: no handler of the command's is left to say it
                    f"verity: waiting for MCP server {server.spec.name!r}, started but not "
                    "used, to finish starting and exit\n"
                )
                said = True
            time.sleep(0.02)
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the group: what it started, too
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(server.process.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                server.process.wait(server.spec.kill_grace)
        with suppress(OSError):
            server.stdout.close()
        if server.pump is not None:
            server.pump.finish(server.spec.kill_grace)
