"""Live output while a run works: step lines with elapsed time, streamed text, loading progress.

`ProgressPrinter` is a `RunHooks` for the progress lines and also the `on_delta` callback of a
model, for the text it streams. On a terminal the line of a working step (or of a model being
loaded) is redrawn in place every second with its elapsed time; elsewhere (a log file) a line
says every `heartbeat_s` seconds that it is still working. Streamed text pauses the redrawing.
Models call `on_delta` from their generating thread, the redrawing runs in a thread of its own,
and the hooks on the event loop: one lock orders their writes.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO, TypeVar

from verity.hooks import (
    ModelCallEnded,
    ModelCallStarted,
    RunEnded,
    RunHooks,
    RunStarted,
    ToolCallEnded,
    ToolCallStarted,
    VerdictReached,
)
from verity.messages import verdict_label
from verity.terminal import printable

__all__ = ["ProgressPrinter"]

_T = TypeVar("_T")
_CLEAR_LINE = "\r\033[K"
_DIM, _PLAIN = "\033[2m", "\033[0m"
_ENDINGS = {
    "length": " (cut off at the token limit, --max-tokens)",
    "repetition": " (stopped: it repeated the same text over and over)",
}
"""What the step's summary adds when a generation did not end on its own."""


class ProgressPrinter(RunHooks):
    """Prints the progress of a run to a stream (stderr by default).

    Args:
        stream: Where progress lines go.
        live: Redraw the working line in place (default: whether `stream` is a terminal).
        answer_stream: Where the answer text streams as it is generated (None: nowhere).
        show_reasoning: Stream the model's reasoning to `stream` too.
        heartbeat_s: Seconds between updates of a working line (1 live, else 30).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        answer_stream: TextIO | None = None,
        show_reasoning: bool = False,
        heartbeat_s: float | None = None,
    ) -> None:
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty() if live is None else live
        self._answer_stream = answer_stream
        self._show_reasoning = show_reasoning
        self._heartbeat_s = heartbeat_s or (1.0 if self._live else 30.0)
        self._lock = threading.Lock()
        self._run_started = time.monotonic()
        self._status: str | None = None
        """The working line drawn without a newline (live only), to be cleared or replaced."""
        self._open: tuple[TextIO, str] | None = None
        """The stream and kind of streamed text whose line is not ended yet."""
        self._step_active = False
        self._text_seen = False
        self._parts: list[str] = []
        self._stop_ticker: Callable[[], None] | None = None
        """Stops the working line's ticker: the step's, or a load's outside a step."""
        self._ticker_lock = threading.Lock()
        self._loading: str | None = None
        self.streamed_answer = ""
        """The answer text streamed to `answer_stream` by the last model call without tool calls."""

    @property
    def answer_stream(self) -> TextIO | None:
        """Where the answer streams as it is generated, if anywhere."""
        return self._answer_stream

    # -- writing (every method below holds the lock when it writes) --

    def _stamp(self, step: int) -> str:
        elapsed = int(time.monotonic() - self._run_started)
        return f"[step {step} {elapsed // 60}:{elapsed % 60:02d}]"

    def _settle(self) -> None:
        """End a working line or an open line of streamed text before writing a new line."""
        if self._status is not None:
            self._stream.write(_CLEAR_LINE)
            self._status = None
        if self._open is not None:
            self._open[0].write("\n")
            self._open[0].flush()
            self._open = None

    def _say(self, text: str) -> None:
        with self._lock:
            self._settle()
            # tool results, arguments and model text may carry escape sequences: never raw
            self._stream.write(printable(text) + "\n")
            self._stream.flush()

    def _show_working(self, text: str) -> None:
        """Draw (live) or print (else) a working line."""
        with self._lock:
            if self._text_seen:
                return  # the streamed text is the progress
            if self._live:
                self._stream.write(_CLEAR_LINE + text)
                self._status = text
            else:
                self._settle()
                self._stream.write(text + "\n")
            self._stream.flush()

    def _start_ticker(self, line: Callable[[float], str]) -> Callable[[], None]:
        """Show `line(elapsed_s)` now and every heartbeat; returns the function that stops it."""
        started = time.monotonic()
        stop = threading.Event()
        self._show_working(line(0.0))

        def tick() -> None:
            while not stop.wait(self._heartbeat_s):
                self._show_working(line(time.monotonic() - started))

        ticker = threading.Thread(target=tick, name="verity-progress", daemon=True)
        ticker.start()

        def stop_ticker() -> None:
            stop.set()
            ticker.join()

        return stop_ticker

    # -- the model's streamed text --

    def on_delta(self, kind: str, text: str) -> None:
        """A model's `on_delta` callback: stream the answer and, if asked, the reasoning."""
        with self._lock:
            if not self._step_active:
                return  # a verifier's or a consensus sample's generation, not the run's answer
            target = self._stream if kind == "reasoning" else self._answer_stream
            if target is None or (kind == "reasoning" and not self._show_reasoning):
                return
            if self._status is not None:
                self._stream.write(_CLEAR_LINE)
                self._stream.flush()
                self._status = None
            if self._open is not None and self._open != (target, kind):
                self._open[0].write("\n")
                self._open[0].flush()
            dim = kind == "reasoning" and self._live
            shown = printable(text)
            target.write(f"{_DIM}{shown}{_PLAIN}" if dim else shown)
            target.flush()
            self._open = (target, kind)
            self._text_seen = True
            if kind == "content":
                self._parts.append(text)

    # -- before the run: assembling and loading the model --

    def assembly_progress(
        self, label: str = "assembling the embedded model (first run only)"
    ) -> Callable[[int, int], None]:
        """A progress callback for `embedded_model_path`: percent done, on one line."""
        shown = -1

        def report(done: int, total: int) -> None:
            nonlocal shown
            percent = done * 100 // max(total, 1)
            if self._live and percent != shown:
                self._show_working(f"verity: {label}: {percent}% of {total / 1e6:.0f} MB")
            elif not self._live and shown < 0:
                self._say(f"verity: {label} ({total / 1e6:.0f} MB)...")
            shown = percent
            if done >= total:
                self._say(f"verity: {label}: done")

        return report

    def loading(self, label: str, load: Callable[[], _T]) -> _T:
        """Call `load()` and return its result, while progress shows `label` and the time taken.

        Inside a model step (a model loads on first use) the step's working line shows it.
        """
        started = time.monotonic()
        with self._lock:
            self._loading = label
        stop = None
        with self._ticker_lock:
            if self._stop_ticker is None:  # loading ahead: a step that begins takes the line over
                stop = self._stop_ticker = self._start_ticker(self._working_line(None))
        if stop is None and not self._live:
            self._say(f"verity: loading {label}...")
        try:
            return load()
        finally:
            if stop is not None:
                with self._ticker_lock:
                    if self._stop_ticker is stop:
                        self._stop_ticker = None
                stop()
            with self._lock:
                self._loading = None
            self._say(f"verity: loaded {label} in {time.monotonic() - started:.1f} s")

    def _working_line(self, step: int | None) -> Callable[[float], str]:
        def line(elapsed_s: float) -> str:
            prefix = "verity:" if step is None else self._stamp(step)
            doing = "model working" if self._loading is None else f"loading {self._loading}"
            return f"{prefix} {doing}..." + (f" {elapsed_s:.0f} s" if elapsed_s else "")

        return line

    # -- the run's hooks --

    async def on_run_start(self, event: RunStarted) -> None:
        """Announce the run and start its clock."""
        self._run_started = time.monotonic()
        self._say(f"verity: run {event.run_id} on {event.model}")

    async def on_model_start(self, event: ModelCallStarted) -> None:
        """Show the working step, with its elapsed time, until the model answers."""
        if event.purpose != "agent":  # a call on the agent's behalf (a verifier's) is not a step
            return
        step, messages = event.step, event.messages
        with self._lock:
            self._step_active, self._text_seen, self._parts = True, False, []
        self._stop_step_ticker()
        if messages and messages[-1].role == "assistant":
            # the model goes on from a rejected answer's corrected beginning: show it first, so
            # the answer streams whole
            self._say(
                f"{self._stamp(step)} going on from the answer's first wrong result, corrected"
            )
            self.on_delta("content", messages[-1].content)
        ticker = self._start_ticker(self._working_line(step))
        with self._ticker_lock:
            self._stop_ticker = ticker

    def _stop_step_ticker(self) -> None:
        with self._ticker_lock:
            stop, self._stop_ticker = self._stop_ticker, None
        if stop is not None:
            stop()

    async def on_model_end(self, event: ModelCallEnded) -> None:
        """Summarise the model call."""
        if event.purpose != "agent":
            return
        step, response = event.step, event.response
        self._stop_step_ticker()
        with self._lock:
            self._step_active = False
            if not response.tool_calls:
                self.streamed_answer = "".join(self._parts)
        usage = response.usage
        speed = f", {usage.completion_tokens / usage.decode_s:.1f} tok/s" if usage.decode_s else ""
        self._say(
            f"{self._stamp(step)} {usage.prompt_tokens} prompt tokens "
            f"({usage.prompt_tokens_evaluated} new), {usage.completion_tokens} generated in "
            f"{usage.duration_s:.1f} s{speed}{_ENDINGS.get(response.finish_reason, '')}"
        )
        for problem in response.invalid_calls:
            self._say(f"{self._stamp(step)} invalid tool call: {problem}")

    async def on_tool_start(self, event: ToolCallStarted) -> None:
        """Show the call."""
        arguments = ", ".join(f"{k}={v!r}" for k, v in event.call.arguments.items())
        self._say(f"{self._stamp(event.step)} -> {event.call.name}({arguments})")

    async def on_tool_end(self, event: ToolCallEnded) -> None:
        """Show the result, shortened."""
        result = event.result
        text = result.content if len(result.content) <= 200 else result.content[:200] + "..."
        marker = "error" if result.is_error else "<-"
        self._say(f"{self._stamp(event.step)} {marker} {text} ({event.duration_s:.2f} s)")

    async def on_verdict(self, event: VerdictReached) -> None:
        """Show the verdict when something was checked, and why the answer checks refused one."""
        step, verdict = event.step, event.verdict
        if verdict.checked:
            label = verdict_label(ok=verdict.ok, conclusive=verdict.conclusive)
            self._say(f"{self._stamp(step)} verdict: {label}")
        elif verdict.refused and verdict.findings:
            why = f"{verdict.findings[0].claim} {verdict.findings[0].evidence}"
            self._say(printable(f"{self._stamp(step)} answer refused: {' '.join(why.split())}"))

    async def on_run_end(self, event: RunEnded) -> None:
        """End any open line: the CLI prints the outcome itself."""
        self._stop_step_ticker()
        with self._lock:
            self._step_active = False
            self._settle()
