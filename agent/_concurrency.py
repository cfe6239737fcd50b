"""How many runs of one agent may go at once: one on an in-process model, any on a server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from verity.models.base import Model
from verity.models.llama_cpp import LlamaCppModel

__all__ = ["RunTurns", "runs_at_once"]


def runs_at_once(model: Model) -> int | None:
    """1 for an in-process model; None (no limit of Verity's own) for a server backend.

    A llama.cpp context holds one conversation's KV prefix: interleaved runs would evict each
    other's prefix at every step and make every run slower, so they take turns. A server
    (llama-server with parallel slots, vLLM, SGLang) batches concurrent requests itself.
    """
    return 1 if isinstance(model, LlamaCppModel) else None


class RunTurns:
    """Lets runs through one at a time on an in-process model, all at once otherwise."""

    def __init__(self, model: Model) -> None:
        self.limit = runs_at_once(model)
        """Runs allowed at once; None: no limit."""
        self._lock = anyio.Lock() if self.limit == 1 else None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the model for one run where it takes one at a time (waits in line, cancellable)."""
        if self._lock is None:
            yield
            return
        async with self._lock:
            yield
