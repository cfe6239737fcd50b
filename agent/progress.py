"""Progress lines on stderr while a run works: the hook behind the CLI's live output."""

from __future__ import annotations

import sys
from typing import TextIO

from verity.hooks import RunHooks, RunStatus
from verity.messages import Message, ModelResponse, ToolCall, Verdict
from verity.tools.base import ToolResult

__all__ = ["ProgressPrinter"]


class ProgressPrinter(RunHooks):
    """Prints one line per event to a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr

    def _say(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    async def on_run_start(self, run_id: str, task: str, model: str) -> None:
        """Announce the run."""
        self._say(f"verity: run {run_id} on {model}")

    async def on_model_start(self, run_id: str, step: int, messages: list[Message]) -> None:
        """Say the model is working."""
        self._say(f"[step {step}] model working...")

    async def on_model_end(self, run_id: str, step: int, response: ModelResponse) -> None:
        """Summarise the model call."""
        usage = response.usage
        speed = f", {usage.completion_tokens / usage.decode_s:.1f} tok/s" if usage.decode_s else ""
        self._say(
            f"[step {step}] {usage.prompt_tokens} prompt tokens ({usage.prompt_tokens_evaluated} "
            f"new), {usage.completion_tokens} generated in {usage.duration_s:.1f} s{speed}"
        )
        for problem in response.invalid_calls:
            self._say(f"[step {step}] invalid tool call: {problem}")

    async def on_tool_start(self, run_id: str, step: int, call: ToolCall) -> None:
        """Show the call."""
        arguments = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
        self._say(f"[step {step}] -> {call.name}({arguments})")

    async def on_tool_end(
        self, run_id: str, step: int, call: ToolCall, result: ToolResult, duration_s: float
    ) -> None:
        """Show the result, shortened."""
        text = result.content if len(result.content) <= 200 else result.content[:200] + "..."
        marker = "error" if result.is_error else "<-"
        self._say(f"[step {step}] {marker} {text} ({duration_s:.2f} s)")

    async def on_verdict(self, run_id: str, step: int, verdict: Verdict) -> None:
        """Show the verdict when something was checked."""
        if verdict.checked:
            self._say(f"[step {step}] verdict: {'accepted' if verdict.ok else 'rejected'}")

    async def on_run_end(
        self,
        run_id: str,
        status: RunStatus,
        answer: str | None,
        error: str | None,
        *,
        verified: bool | None = None,
        verify_rounds: int = 0,
    ) -> None:
        """Nothing here: the CLI prints the outcome itself."""
