"""What servers and models wrote reaches the terminal without escape sequences."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from verity import ToolCallEnded, ToolCallStarted, run
from verity.messages import ToolCall
from verity.progress import ProgressPrinter
from verity.terminal import printable
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import ToolResult, tool
from verity.tools.toolset import FunctionToolset
from verity.trace.recorder import TraceRecorder
from verity.trace.store import TraceStore

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[1;31mred\x1b[0m\r\x1bP+q\x1b\\ \x9b6n\u202eevil\x00!"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (HOSTILE, "red evil!"),
        ("a\x1b]52;c;ZWNobyBoaQ==\x07b", "ab"),  # OSC 52: write the clipboard
        ("line one\r\nline two\ttabbed", "line one\nline two\ttabbed"),
        ("ünïcödé ✓ 日本", "ünïcödé ✓ 日本"),
    ],
)
def test_printable_drops_escape_sequences_and_controls_but_keeps_text(
    text: str, shown: str
) -> None:
    assert printable(text) == shown


async def test_progress_lines_show_tool_results_without_escape_sequences() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream)
    call = ToolCall(id="c1", name="files__read", arguments={"path": HOSTILE})
    await printer.on_tool_start(ToolCallStarted(run_id="r", step=1, call=call))
    await printer.on_tool_end(
        ToolCallEnded(
            run_id="r", step=1, call=call, result=ToolResult(content=HOSTILE), duration_s=0.01
        )
    )
    assert "\x1b" not in stream.getvalue() and "\x9b" not in stream.getvalue()
    assert stream.getvalue().splitlines()[-1].endswith("] <- red evil! (0.01 s)")


def test_verity_show_prints_a_hostile_tool_result_without_escape_sequences(
    tmp_path: Path,
) -> None:
    @tool
    def fetch() -> str:
        """Fetch a page."""
        return HOSTILE

    store = TraceStore(tmp_path / "traces.db")
    model = ScriptedModel([calls(("fetch", {})), answer("done")])
    result = anyio.run(
        lambda: run(
            "fetch it", model=model, toolsets=[FunctionToolset([fetch])], hooks=TraceRecorder(store)
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "verity", "show", result.run_id, "--trace-db", str(store.path)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: a loaded machine starts Python slowly
    )
    assert done.returncode == 0, done.stderr
    assert "│     -> red evil!" in done.stdout.splitlines()
    assert not any(c in done.stdout for c in "\x1b\x9b\x07\x00\u202e")
