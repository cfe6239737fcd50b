"""A search that found nothing because of arguments the model made up.

Small models fill optional arguments with values of their own: the embedded 0.5B model asked
for the last commit called `git_log` with `start_timestamp` and `end_timestamp` set to a moment
in 2024 and `contains: "HEAD"`, got an empty history, and answered "No commit history
available." Every word of that answer rests on the empty result; what is wrong is the call. So
when the last successful call found nothing and one of its arguments is a value the model made
up (a single token that neither the task nor any earlier result holds: a date, a ref, a name),
the empty result says nothing about the task. Values with spaces (a SQL query, a sentence) are
composed from the task, not copied, and are not judged.
"""

from __future__ import annotations

from verity.messages import ToolCall
from verity.tools.base import ToolResult
from verity.verify._grounding import found_nothing, leaves
from verity.verify._tool_failures import failed

__all__ = ["invented_arguments"]

_MAX_TOKEN = 64


def invented_arguments(
    task: str, evidence: list[tuple[ToolCall, ToolResult]]
) -> list[tuple[str, str]] | None:
    """The made-up arguments (name, value) of the last successful call when it found nothing;
    None when it found something, or every argument came from the task or an earlier result."""
    succeeded = [(call, result) for call, result in evidence if not failed(result)]
    if not succeeded or not found_nothing(succeeded[-1][1].content):
        return None
    call = succeeded[-1][0]
    seen = " ".join([task, *(result.content for _, result in evidence)]).casefold()
    made_up = [
        (name, str(value))
        for name, argument in call.arguments.items()
        for value in leaves(argument)
        if isinstance(value, str)
        and value.strip()
        and len(value) <= _MAX_TOKEN
        and not any(space in value for space in " \t\n")
        and value.casefold().strip("/") not in seen
    ]
    return made_up or None
