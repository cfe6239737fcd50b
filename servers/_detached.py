"""Runs that outlive a request: how a 2026-07-28 client is asked to approve a call mid-run.

A 2026-07-28 request has no channel back to the client while it is open. So a run that may need
approvals goes on in the background: when it has a question, the request returns it as an
`InputRequiredResult` whose `request_state` names the run, and the client's retry, carrying the
answer, picks the run up again: the answer is delivered, and the retry waits for the next
question or the outcome. A question nobody answers in time is answered "no" by the run itself.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.abc
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    InputResponses,
)

__all__ = ["DetachedRun", "DetachedRuns"]

Report = Callable[[float, str], Awaitable[None]]
_KEEP_FINISHED_S = 60.0
"""How long the outcome of a finished run waits for the client's next round."""
T = TypeVar("T")


@dataclass
class _Question:
    key: str
    request: ElicitRequest
    answered: anyio.Event = field(default_factory=anyio.Event)
    response: ElicitResult | None = None


class DetachedRun:
    """One run going on in the background, and the questions it waits on."""

    def __init__(self, handle: str, *, timeout: float) -> None:
        self.handle = handle
        self._timeout = timeout
        self._send, self._receive = anyio.create_memory_object_stream[_Question | None](math.inf)
        self._open: dict[str, _Question] = {}
        self._keys = itertools.count(1)
        self._report: Report | None = None
        self.scope = anyio.CancelScope()
        self.outcome: Any = None
        self.error: Exception | None = None

    async def ask(self, message: str, schema: dict[str, Any]) -> ElicitResult | None:
        """Put a question to the client's user; None when nobody answered within the timeout."""
        params = ElicitRequestFormParams(message=message, requested_schema=schema)
        question = _Question(f"question-{next(self._keys)}", ElicitRequest(params=params))
        self._open[question.key] = question
        await self._send.send(question)
        with anyio.move_on_after(self._timeout):
            await question.answered.wait()
        del self._open[question.key]
        return question.response

    async def report(self, progress: float, message: str) -> None:
        """Progress, to the request that waits on the run now (dropped between requests)."""
        if self._report is not None:
            await self._report(progress, message)

    def answer(self, responses: InputResponses) -> None:
        """Deliver the client's answers to the questions still open."""
        for key, response in responses.items():
            question = self._open.get(key)
            if question is not None and isinstance(response, ElicitResult):
                question.response = response
                question.answered.set()

    def close(self) -> None:
        """Release the question channel (the run has ended and its outcome was collected)."""
        self._send.close()
        self._receive.close()

    async def finish(self, outcome: Any, error: Exception | None) -> None:
        """The run ended: tell whoever waits."""
        self.outcome, self.error = outcome, error
        await self._send.send(None)

    async def wait(self, report: Report) -> Any:
        """Wait, reporting progress, for the next open question or the outcome.

        Returns the outcome, or an `InputRequiredResult` with the question. Cancelling the wait
        cancels the run.

        Raises:
            Exception: what the run raised.
        """
        self._report = report
        try:
            while True:
                question = await self._receive.receive()
                if question is None:
                    if self.error is not None:
                        raise self.error
                    return self.outcome
                if question.key in self._open:  # not answered "no" by a timeout meanwhile
                    return InputRequiredResult(
                        input_requests={question.key: question.request}, request_state=self.handle
                    )
        except anyio.get_cancelled_exc_class():
            self.scope.cancel()
            raise
        finally:
            self._report = None


class DetachedRuns(Generic[T]):
    """The runs going on in the background, by handle, in the server's task group; each ends
    with a `T`."""

    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._runs: dict[str, DetachedRun] = {}
        self._groups: list[anyio.abc.TaskGroup] = []

    @asynccontextmanager
    async def hosting(self) -> AsyncIterator[None]:
        """Give background runs a task group for as long as the server runs (its lifespan)."""
        async with anyio.create_task_group() as group:
            self._groups.append(group)
            try:
                yield
            finally:
                self._groups.remove(group)
                group.cancel_scope.cancel()
        if not self._groups:  # the server stopped: nothing can come back for these
            for run in self._runs.values():
                run.close()
            self._runs.clear()

    @property
    def available(self) -> bool:
        """Whether runs can go on in the background now."""
        return bool(self._groups)

    async def start(
        self, work: Callable[[DetachedRun], Awaitable[T]], report: Report
    ) -> T | InputRequiredResult:
        """Start `work` in the background and wait for its first question or its outcome."""
        run = DetachedRun(secrets.token_urlsafe(16), timeout=self._timeout)
        self._runs[run.handle] = run

        async def background() -> None:
            outcome, error = None, None
            with run.scope:
                try:
                    outcome = await work(run)
                except Exception as exc:  # noqa: BLE001 - handed to the request that waits
                    error = exc
            if run.scope.cancelled_caught:
                error = ToolError("The run was cancelled; the trace records it as cancelled.")
            await run.finish(outcome, error)
            self._forget_later(run)

        self._groups[-1].start_soon(background)
        return await self._wait(run, report)

    async def resume(
        self, handle: str, responses: InputResponses, report: Report
    ) -> T | InputRequiredResult:
        """A retry: deliver its answers, then wait for the next question or the outcome.

        Raises:
            ToolError: no run waits under this handle (it ended, or the server restarted).
        """
        run = self._runs.get(handle)
        if run is None:
            raise ToolError(
                "This run is no longer waiting for an answer: it has ended, or the server "
                "restarted. Its result, if any, is in the trace (list_runs)."
            )
        run.answer(responses)
        return await self._wait(run, report)

    async def _wait(self, run: DetachedRun, report: Report) -> T | InputRequiredResult:
        result = await run.wait(report)
        if not isinstance(result, InputRequiredResult):
            self._forget(run)
        return cast("T | InputRequiredResult", result)

    def _forget(self, run: DetachedRun) -> None:
        if self._runs.pop(run.handle, None) is not None:
            run.close()

    def _forget_later(self, run: DetachedRun) -> None:
        """Drop a finished run whose outcome nobody came back for, a while later."""

        async def forget() -> None:
            await anyio.sleep(max(self._timeout, _KEEP_FINISHED_S))
            self._forget(run)

        if run.handle in self._runs and self._groups:
            self._groups[-1].start_soon(forget)
