"""What to say when a prompt does not fit the context: how much the tools take, and which ones."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from verity.tools.base import ToolSpec

__all__ = ["overflow_message"]

_NAMED = 3


def overflow_message(
    *,
    needed: int,
    n_ctx: int,
    without_tools: int,
    tools: Sequence[ToolSpec],
    count: Callable[[str], int],
) -> str:
    """The error for a prompt of `needed` tokens in a context of `n_ctx`.

    Where the tool definitions take at least half of the prompt, the largest ones are named
    with their sizes, so the person knows which tools (or which MCP server) to leave out.

    Args:
        needed: Tokens of the whole prompt.
        n_ctx: Tokens the context holds.
        without_tools: Tokens of the same prompt with no tools offered.
        tools: The offered tools.
        count: Counts the tokens of a text.
    """
    head = f"The conversation needs {needed} tokens but the context holds {n_ctx}"
    taken = needed - without_tools
    if not tools or taken * 2 < needed:
        return f"{head}. Raise n_ctx or shorten the task and tool outputs."
    sizes = sorted(((count(_shown(spec)), spec.name) for spec in tools), reverse=True)
    largest = ", ".join(f"{name} ({size} tokens)" for size, name in sizes[:_NAMED])
    more = f" and {len(sizes) - _NAMED} more" if len(sizes) > _NAMED else ""
    return (
        f"{head}; the {len(tools)} tool definitions take {taken} of them, the largest "
        f'{largest}{more}. Raise n_ctx, or leave the largest tools out ("excludeTools" in '
        "their MCP server's config entry)."
    )


def _shown(spec: ToolSpec) -> str:
    return json.dumps(
        {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
        ensure_ascii=False,
    )
