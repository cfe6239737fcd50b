"""Passes a generation's reasoning and answer on as they are written, never a tool call.

The answer is passed on only once the tool-call format has decided it is text, and text that
may still turn out to open a call (a `<` or a backtick that a later-call search has not yet
ruled out) is held back until it is ruled out or the generation ends, so what is passed on is
always a prefix of the final text (which is stripped: trailing whitespace waits too).
"""

from __future__ import annotations

from collections.abc import Callable

from verity.models.base import DeltaKind

__all__ = ["TextStream"]

_MARKER_REACH = 64
"""As far back as `_generation` searches again for a call marker still being written."""
_MARKER_STARTS = "<`"
"""Every call marker (tag or fence) of every format starts with one of these."""


class TextStream:
    """Calls `on_delta(kind, text)` with each new piece of reasoning or answer."""

    def __init__(self, on_delta: Callable[[DeltaKind, str], None]) -> None:
        self._on_delta = on_delta
        self._sent: dict[DeltaKind, int] = {"reasoning": 0, "content": 0}

    def reasoning(self, so_far: str, *, final: bool) -> None:
        """Pass on the reasoning written so far, holding back a `</think>` being written."""
        text = so_far.lstrip()
        end = len(text) if final else len(text) - _overlap(text, "</think>")
        self._send("reasoning", text, end)

    def content(self, so_far: str, *, hold_markers: bool, final: bool = False) -> None:
        """Pass on the answer written so far; with `hold_markers`, not what may open a call."""
        text = so_far.lstrip()
        end = len(text)
        if hold_markers and not final:
            start = max(self._sent["content"], len(text) - _MARKER_REACH)
            end = next((i for i in range(start, len(text)) if text[i] in _MARKER_STARTS), end)
        self._send("content", text, end)

    def _send(self, kind: DeltaKind, text: str, end: int) -> None:
        # trailing whitespace waits for what follows it: the final text is stripped
        end = len(text[:end].rstrip())
        sent = self._sent[kind]
        if end > sent:
            self._on_delta(kind, text[sent:end])
            self._sent[kind] = end


def _overlap(text: str, marker: str) -> int:
    """Length of the longest start of `marker` that `text` ends with."""
    for length in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:length]):
            return length
    return 0
