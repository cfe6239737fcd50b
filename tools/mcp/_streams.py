"""A transport whose streams note when the line itself ended, to tell a closed connection apart.

The SDK reports a closed connection as `MCPError(-32000, "Connection closed")`, the very code
a server may send in its own error answer (-32000 to -32099 are for servers to define). So the
code alone says nothing: only a read stream that reached its end, or a write that failed, does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

import anyio
from mcp.client._transport import ReadStream, Transport, WriteStream
from mcp.shared.message import SessionMessage

__all__ = ["watched"]

_ENDED = (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError)


@asynccontextmanager
async def watched(
    transport: Transport, ended: anyio.Event
) -> AsyncIterator[tuple[ReadStream[SessionMessage | Exception], WriteStream[SessionMessage]]]:
    """`transport`'s streams; `ended` is set once reading ends or a write fails."""
    async with transport as (read, write):
        yield _Read(read, ended), _Write(write, ended)


class _Read:
    def __init__(self, inner: ReadStream[SessionMessage | Exception], ended: anyio.Event) -> None:
        self._inner = inner
        self._ended = ended

    @property
    def last_context(self) -> Any:
        """The sender's context, which the SDK looks for on HTTP streams."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._inner.receive()
        except _ENDED:
            self._ended.set()
            raise

    async def aclose(self) -> None:
        # The session closes its read stream only once it stops reading for good.
        self._ended.set()
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _Write:
    def __init__(self, inner: WriteStream[SessionMessage], ended: anyio.Event) -> None:
        self._inner = inner
        self._ended = ended

    async def send(self, item: SessionMessage, /) -> None:
        try:
            await self._inner.send(item)
        except _ENDED:
            self._ended.set()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()
