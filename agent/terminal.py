"""Text from servers and models made safe to print: no escape sequences, no control characters.

A tool result, a server's error or a model's answer may carry terminal escape sequences (set a
window title, rewrite the screen, hide text, write to the clipboard with OSC 52) or bidi
overrides that make printed text read differently from what it is. Everything Verity prints
that it did not write itself goes through `printable()`.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor movement, erase
    r"|\x9b[0-?]*[ -/]*[@-~]"  # the same, 8-bit
    r"|[\x1b\x9d\x90\x98\x9e\x9f][\]P^_X].*?(?:\x07|\x1b\\|\x9c|$)"  # OSC, DCS, PM, APC, SOS
    r"|[\x9d\x90\x98\x9e\x9f].*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[ -/]*[0-~]?",  # any other escape (charset, keypad, reset)
    re.DOTALL,
)
# C0 and C1 controls but tab and newline; DEL; bidi embeddings, overrides and isolates.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without escape sequences and control characters (tabs and newlines stay)."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))
