"""Each server's prefix in tool names (`<prefix>__<tool>`). Light: the config reads it early."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["tool_prefixes"]

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
