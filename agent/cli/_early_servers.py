"""`verity run`, `chat` and `batch` start their stdio MCP servers before importing the SDK and
llama.cpp.

The imports take ~2 s and an `npx -y` server ~1.7 s to answer: started first, the servers come
up meanwhile, and each connection takes its process (`verity.tools.mcp._prestart`). Only the
options that choose servers are read here (`--mcp-config`, `--servers`); anything this reading
is unsure of (an abbreviated option, a config it cannot read) starts nothing early, and the run
starts and reports its servers as it always did.
"""

from __future__ import annotations

from collections.abc import Sequence

from verity.cli._server_choice import config_path, server_names
from verity.mcp_config import default_mcp_config_path, load_mcp_config
from verity.tools.mcp import server_log
from verity.tools.mcp._prestart import prestart

__all__ = ["start_servers_early"]

_OPTIONS = ("--mcp-config", "--servers")


def start_servers_early(argv: Sequence[str]) -> int:
    """Start the stdio servers `verity run|chat|batch argv` will connect to; returns how many
    started."""
    try:
        chosen = _chosen(argv)
    except ValueError:
        return 0
    given, names = chosen.get("--mcp-config"), chosen.get("--servers")
    path = default_mcp_config_path() if given is None else config_path(given)
    only = None if names is None else server_names(names)
    try:
        config = load_mcp_config(path, required=False, only=only)
        return prestart(config.servers, server_log()) if config.servers else 0
    except Exception:  # noqa: BLE001 - the run reads the config again and reports what is wrong
        return 0


def _chosen(argv: Sequence[str]) -> dict[str, str]:
    """`--mcp-config` and `--servers` as given (`--option VALUE` or `--option=VALUE`).

    Raises:
        ValueError: an option this reading cannot be sure of (an abbreviation of one of them,
            one given twice, one without its value).
    """
    chosen: dict[str, str] = {}
    words = list(argv)
    for index, word in enumerate(words):
        if word == "--":
            break
        name, equals, value = word.partition("=")
        if not name.startswith("--") or len(name) < 3:
            continue
        if not any(option.startswith(name) for option in _OPTIONS):
            continue
        if name not in _OPTIONS or name in chosen:
            raise ValueError(word)
        if not equals:
            if index + 1 >= len(words):
                raise ValueError(word)
            value = words[index + 1]
        chosen[name] = value
    return chosen
