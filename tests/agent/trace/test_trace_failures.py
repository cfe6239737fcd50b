"""A trace write that fails mid-run: the run that completed is still recorded completed, with its
answer and a list of what is missing; when even its end cannot be written, the caller is told
exactly what was lost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from verity import RunEnded, RunSettings, TraceRecorder, TraceStore, run
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import tool
from verity.tools.toolset import FunctionToolset

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
"""


class LockHolder:
    """Another process holding the database's write lock from `take()` until `release()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen[str] | None = None

    def take(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdout.readline() == "locked\n"

    def release(self) -> None:
        if self.process is not None:
            self.process.communicate("\n", timeout=10)
            self.process = None


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[LockHolder]:
    held = LockHolder(tmp_path / "t.db")
    yield held
    held.release()


class ReleasingRecorder(TraceRecorder):
    """Lets the other process go just before the run's end is written, when told to."""

    def __init__(self, store: TraceStore, holder: LockHolder, *, release: bool) -> None:
        super().__init__(store)
        self.holder, self.release = holder, release

    async def on_run_end(self, event: RunEnded) -> None:
        if self.release:
            self.holder.release()
        await super().on_run_end(event)


async def run_with_lock_taken_at_step_1(
    store: TraceStore, holder: LockHolder, *, release_before_end: bool
) -> tuple[str, TraceRecorder]:
    @tool
    def lookup(key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """
        holder.take()  # from here on, this run's writes time out
        return "42"

    model = ScriptedModel([calls(("lookup", {"key": "a"})), answer("It is 42.")])
    recorder = ReleasingRecorder(store, holder, release=release_before_end)
    with anyio.fail_after(120):
        result = await run(
            "What is a?",
            model=model,
            toolsets=[FunctionToolset([lookup])],
            hooks=recorder,
            settings=RunSettings(max_steps=3),
        )
    model.assert_complete()
    assert result.answer == "It is 42."
    return result.run_id, recorder


async def test_a_completed_run_whose_writes_failed_is_recorded_completed_with_its_answer(
    tmp_path: Path, holder: LockHolder
) -> None:
    store = TraceStore(tmp_path / "t.db", timeout=0.3)
    run_id, recorder = await run_with_lock_taken_at_step_1(store, holder, release_before_end=True)
    lost = (
        "OperationalError: database is locked; not recorded: step 1's call of lookup, "
        "step 2's messages, step 2's model call, step 2's verdict"
    )
    assert recorder.failure == lost
    store.close()
    reopened = TraceStore(tmp_path / "t.db")
    [row] = reopened.read("select status, answer, error from runs where id = ?", [run_id])
    assert row == {
        "status": "completed",
        "answer": "It is 42.",
        "error": "The trace is incomplete (OperationalError: database is locked); not recorded: "
        "step 1's call of lookup, step 2's messages, step 2's model call, step 2's verdict",
    }


async def test_when_the_runs_end_cannot_be_written_either_the_failure_says_so(
    tmp_path: Path, holder: LockHolder
) -> None:
    store = TraceStore(tmp_path / "t.db", timeout=0.3)
    run_id, recorder = await run_with_lock_taken_at_step_1(store, holder, release_before_end=False)
    assert recorder.failure == (
        "OperationalError: database is locked; not recorded: step 1's call of lookup, "
        f"step 2's messages, step 2's model call, step 2's verdict, run {run_id}'s end "
        "(completed): it will show "
        "as interrupted"
    )
