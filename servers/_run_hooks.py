"""What a served run tells its MCP client as it goes (progress) and at its end (the tally)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from verity.hooks import (
    ModelCallEnded,
    ModelCallStarted,
    RunEnded,
    RunHooks,
    RunStatus,
    ToolCallEnded,
    ToolCallStarted,
    VerdictReached,
)
from verity.messages import Usage, Verdict

__all__ = ["ProgressReporter", "Report", "RunTally"]

Report = Callable[[float, str], Awaitable[None]]
"""Sends one progress notification: a number that grows with every event, and a message."""

_log = logging.getLogger("verity.serve")
_SHOWN = 160
"""Characters of tool arguments and results quoted in a progress message."""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class ProgressReporter(RunHooks):
    """Turns run events into MCP progress notifications (model working, tool call and result,
    verdict). A client that stops listening never stops the run."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._count = 0

    async def say(self, message: str) -> None:
        """Send one notification; a failure to deliver is logged, never raised."""
        self._count += 1
        try:
            await self._report(self._count, message)
        except Exception as exc:  # noqa: BLE001 - progress is advisory; the run goes on
            _log.debug("progress not delivered: %r", exc)

    async def on_model_start(self, event: ModelCallStarted) -> None:
        """Say the model is working (for the agent, or for a verifier)."""
        worker = "model" if event.purpose == "agent" else f"model ({event.purpose})"
        await self.say(f"step {event.step}: {worker} working")

    async def on_tool_start(self, event: ToolCallStarted) -> None:
        """Show the call."""
        call = event.call
        await self.say(
            f"step {event.step}: calling {call.name}({_short(json.dumps(call.arguments))})"
        )

    async def on_tool_end(self, event: ToolCallEnded) -> None:
        """Show the result, shortened."""
        outcome = "failed" if event.result.is_error else "returned"
        name, content = event.call.name, _short(event.result.content)
        await self.say(f"step {event.step}: {name} {outcome}: {content}")

    async def on_verdict(self, event: VerdictReached) -> None:
        """Show a verdict that checked something."""
        verdict = event.verdict
        if verdict.checked:
            judged = "tool arguments" if verdict.scope == "tool_calls" else "answer"
            outcome = "accepted" if verdict.ok else "rejected"
            await self.say(
                f"step {event.step}: verdict on the {judged}: {outcome} ({verdict.verifier})"
            )


class RunTally(RunHooks):
    """Counts what a run did, so its outcome can be told even when it ended without an answer."""

    def __init__(self, run_id: str) -> None:
        """Count the run `run_id` (not the consensus samples, which are runs of their own)."""
        self.run_id = run_id
        self.steps = 0
        self.usage = Usage()
        self.verdict: Verdict | None = None
        """The last verdict on a candidate answer that checked something."""
        self.status: RunStatus | None = None
        self.error: str | None = None
        self.verified: bool | None = None
        self.verify_rounds = 0

    async def on_model_end(self, event: ModelCallEnded) -> None:
        """Count the agent's steps, and the tokens of every model call (a verifier's too)."""
        if event.run_id == self.run_id:
            if event.purpose == "agent":
                self.steps = max(self.steps, event.step)
            self.usage += event.response.usage

    async def on_verdict(self, event: VerdictReached) -> None:
        """Keep the latest verdict on an answer."""
        verdict = event.verdict
        if event.run_id == self.run_id and verdict.scope == "answer" and verdict.checked:
            self.verdict = verdict

    async def on_run_end(self, event: RunEnded) -> None:
        """Keep how the run ended."""
        if event.run_id == self.run_id:
            self.status, self.error = event.status, event.error
            self.verified, self.verify_rounds = event.verified, event.verify_rounds

    def verdict_summary(self, verify: str) -> str:
        """One sentence on the verification of the answer."""
        if self.verified is None or self.verdict is None:
            if verify.strip().lower() == "none":
                return "Not verified: verification is off (verify mode 'none')."
            return "Not verified: no answer reached the verifier."
        rounds = f"{self.verify_rounds} round{'' if self.verify_rounds == 1 else 's'}"
        findings = self.verdict.findings
        claims = (
            f", {sum(f.ok for f in findings)} of {len(findings)} claims hold" if findings else ""
        )
        if self.verified:
            return f"Accepted by {self.verdict.verifier} after {rounds}{claims}."
        feedback = _short(self.verdict.feedback) if self.verdict.feedback else "no feedback"
        return f"Not accepted by {self.verdict.verifier} after {rounds}{claims}: {feedback}"
