"""Each server's prefix in tool names (`<prefix>__<tool>`), and allow patterns written with a
server's name. Light: the config and the agent read them before the MCP SDK is imported."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["SEPARATOR", "allow_patterns", "tool_prefixes"]

SEPARATOR = "__"
"""Between the server and the tool name. Server names may not contain it, so names never collide."""

_PREFIX_INVALID = re.compile(r"[^A-Za-z0-9-]+")
_MAX_PREFIX = 32


def tool_prefixes(names: Iterable[str]) -> dict[str, str]:
    """Each server name's prefix in tool names: valid characters only, distinct, no `__` inside.

    A name such as `my server` or `github.com` becomes `my_server`, `github_com`; a prefix that
    had to change, or would repeat another, gets a short hash of the full name.
    """
    prefixes: dict[str, str] = {}
    for name in names:
        prefix = _PREFIX_INVALID.sub("_", name).strip("_")[:_MAX_PREFIX].strip("_") or "server"
        if prefix in prefixes.values():
            prefix = f"{prefix}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
        prefixes[name] = prefix
    return prefixes


def allow_patterns(patterns: Iterable[str], servers: Iterable[str]) -> list[str]:
    """Allow patterns as a person writes them: a server's name as it stands in the config
    (`My Files__read_*`) is also turned into its tool prefix (`My_Files__read_*`).

    The server part is found without regard to case, as the approval gate matches.
    """
    prefixes = tool_prefixes(servers)
    by_length = sorted(prefixes, key=len, reverse=True)  # `a b` before `a` for `a b__x`
    found = []
    for pattern in patterns:
        found.append(pattern)
        for name in by_length:
            head = f"{name}{SEPARATOR}"
            if pattern.casefold().startswith(head.casefold()) and name != prefixes[name]:
                found.append(f"{prefixes[name]}{SEPARATOR}{pattern[len(head) :]}")
                break
    return found
