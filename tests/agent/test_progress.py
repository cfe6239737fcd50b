"""`ProgressPrinter`: a long step keeps saying how long it has worked; streamed text replaces the
working line; text that is not the run's own step (a verifier's) does not stream."""

from __future__ import annotations

import io
import re
import time

import anyio

from verity import ModelCallEnded, ModelCallStarted, VerdictReached
from verity.messages import Finding, Message, ModelResponse, Usage, Verdict
from verity.progress import ProgressPrinter

RESPONSE = ModelResponse(
    content="Forty-two.",
    usage=Usage(
        prompt_tokens=10,
        prompt_tokens_evaluated=4,
        completion_tokens=3,
        duration_s=0.5,
        decode_s=0.25,
    ),
)


def wait_for(stream: io.StringIO, pattern: str) -> None:
    """Until `pattern` appears: the heartbeats are written from the printer's own thread."""
    deadline = time.monotonic() + 5
    while not re.search(pattern, stream.getvalue()):
        assert time.monotonic() < deadline, f"no {pattern!r} in {stream.getvalue()!r}"
        time.sleep(0.01)


def test_a_working_step_in_a_log_says_every_heartbeat_how_long_it_has_worked() -> None:
    log = io.StringIO()
    printer = ProgressPrinter(log, live=False, heartbeat_s=0.05)
    anyio.run(printer.on_model_start, ModelCallStarted(run_id="run", step=1, messages=[]))
    wait_for(log, r"model working\.\.\. \d+ s\n")
    anyio.run(printer.on_model_end, ModelCallEnded(run_id="run", step=1, response=RESPONSE))
    lines = log.getvalue().splitlines()
    assert lines[0] == "[step 1 0:00] model working..."
    assert all(
        re.fullmatch(r"\[step 1 0:0\d\] model working\.\.\. \d+ s", line) for line in lines[1:-1]
    )
    assert re.fullmatch(
        r"\[step 1 0:0\d\] 10 prompt tokens \(4 new\), 3 generated in 0\.5 s, 12\.0 tok/s",
        lines[-1],
    )


def test_on_a_terminal_the_working_line_is_redrawn_and_streamed_text_replaces_it() -> None:
    terminal, answer = io.StringIO(), io.StringIO()
    printer = ProgressPrinter(terminal, live=True, answer_stream=answer, heartbeat_s=0.05)
    anyio.run(printer.on_model_start, ModelCallStarted(run_id="run", step=1, messages=[]))
    wait_for(terminal, r"\r\x1b\[K\[step 1 0:0\d\] model working\.\.\. \d+ s")
    printer.on_delta("content", "Forty")
    printer.on_delta("reasoning", "hidden unless asked for")
    drawn = terminal.getvalue()
    time.sleep(0.2)  # heartbeats pass: the text streaming is the progress now
    assert terminal.getvalue() == drawn
    assert drawn.endswith("\r\x1b[K")  # the working line was cleared for the text
    printer.on_delta("content", "-two.")
    anyio.run(printer.on_model_end, ModelCallEnded(run_id="run", step=1, response=RESPONSE))
    assert answer.getvalue() == "Forty-two.\n"
    assert printer.streamed_answer == "Forty-two."
    assert terminal.getvalue().startswith(drawn)
    assert "hidden" not in terminal.getvalue()


def test_text_generated_outside_the_run_s_steps_does_not_stream() -> None:
    terminal, answer = io.StringIO(), io.StringIO()
    printer = ProgressPrinter(terminal, live=False, answer_stream=answer, show_reasoning=True)
    printer.on_delta("content", "a verifier's verdict")
    anyio.run(printer.on_model_start, ModelCallStarted(run_id="run", step=1, messages=[]))
    printer.on_delta("reasoning", "thinking")
    printer.on_delta("content", "Forty-two.")
    anyio.run(printer.on_model_end, ModelCallEnded(run_id="run", step=1, response=RESPONSE))
    printer.on_delta("content", "a consensus sample's answer")
    assert answer.getvalue() == "Forty-two.\n"
    assert "thinking\n" in terminal.getvalue()


def test_an_answer_resumed_at_its_corrected_step_streams_whole() -> None:
    log, answer = io.StringIO(), io.StringIO()
    printer = ProgressPrinter(log, live=False, answer_stream=answer)
    begun = Message(role="assistant", content="204 + 160 + 330 = 694")
    anyio.run(
        printer.on_model_start,
        ModelCallStarted(
            run_id="run", step=2, messages=[Message(role="user", content="Add."), begun]
        ),
    )
    printer.on_delta("content", " dollars.")
    anyio.run(printer.on_model_end, ModelCallEnded(run_id="run", step=2, response=RESPONSE))
    assert answer.getvalue() == "204 + 160 + 330 = 694 dollars.\n"
    assert printer.streamed_answer == "204 + 160 + 330 = 694 dollars."
    assert "going on from the answer's first wrong result" in log.getvalue()


def test_an_answer_the_answer_checks_refused_is_said_with_the_reason() -> None:
    log = io.StringIO()
    printer = ProgressPrinter(log, live=False)
    finding = Finding(claim="the answer", ok=False, evidence="is the bare value None")
    refused = Verdict(
        ok=False, verifier="answer-checks", findings=[finding], checked=False, refused=True
    )
    anyio.run(printer.on_verdict, VerdictReached(run_id="run", step=2, verdict=refused))
    assert re.fullmatch(
        r"\[step 2 0:0\d\] answer refused: the answer is the bare value None\n", log.getvalue()
    )
