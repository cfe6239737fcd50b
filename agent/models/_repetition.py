"""The repetition guard: greedy decoding that loops on the same text is stopped, not run to the
token limit.

Small models decoded greedily fall into loops: the same line, or the same few lines, again and
again until `max_tokens`. A loop shows as a generated token sequence that ends with one unit of
tokens repeated back to back. The guard watches the tail of what was generated and calls it a
loop when a unit of at most `MAX_PERIOD` tokens has repeated at least `MIN_REPEATS` times and
the repeats span at least `MIN_SPAN` tokens (so a short run such as `====` or a small table
row is not). It changes no token of a generation that does not loop, unlike a repeat penalty,
which skews every choice, those inside a tool call's JSON included.
"""

from __future__ import annotations

__all__ = ["MAX_PERIOD", "MIN_CALL_PERIOD", "MIN_REPEATS", "MIN_SPAN", "repeated_unit"]

MAX_PERIOD = 128
"""The longest unit (in tokens) looked for: a few lines of text."""
MIN_REPEATS = 4
MIN_SPAN = 128
"""Tokens the repeats must cover together: a one-token unit must repeat 128 times."""


MIN_CALL_PERIOD = 16
"""Inside a list of tool calls, the shortest unit that counts: about one whole call. The same
calls written twice back to back are a loop there (small models cycle through a few calls
until `max_tokens`: 24 calls in 1,028 tokens, 150 s, from the 1.5B demo model)."""


def repeated_unit(
    tokens: list[int],
    *,
    min_repeats: int = MIN_REPEATS,
    min_period: int = 1,
    min_span: int = MIN_SPAN,
) -> int | None:
    """The length of the unit `tokens` ends by repeating, if they end in a loop, else None."""
    count = len(tokens)
    for period in range(min_period, min(MAX_PERIOD, count // min_repeats) + 1):
        if tokens[-1] != tokens[-1 - period]:
            continue  # cheap test first: a period must map the last token onto itself
        span = max(period * min_repeats, min_span)
        if span > count:
            return None  # longer periods need even longer spans
        tail = tokens[-span:]
        if tail[period:] == tail[:-period]:
            return period
    return None
