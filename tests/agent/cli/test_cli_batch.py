"""`verity batch` on the real embedded model: results as JSON lines, a summary, and a second
invocation after Ctrl-C that runs only what had not completed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.cli.test_cli import verity
from tests.conftest import PROJECT_ROOT

TASKS = [
    {"id": "a", "task": "What is 12 * 12?", "expected": 144},
    {"id": "b", "task": "What is 7 + 8?", "expected": "15"},
]
"""Two are enough: Ctrl-C lands once the first is written, so the second is cut or not begun."""


def _outcomes(path: Path) -> dict[str, dict[str, object]]:
    return {row["id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_a_bad_tasks_file_is_one_line_naming_the_line(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"task": "What is 2 + 2?"}\n{"question": "no task here"}\n')
    done = verity("batch", str(tasks), trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert done.stderr.startswith(f"verity: error: {tasks}:2: each line is an object")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_batch_resumes_after_ctrl_c_and_prints_the_summary(tmp_path: Path) -> None:
    tasks, db = tmp_path / "tasks.jsonl", tmp_path / "t.db"
    tasks.write_text("\n".join(json.dumps(task) for task in TASKS) + "\n")
    out = tmp_path / "first.jsonl"
    environment = {key: value for key, value in os.environ.items() if key != "VERITY_MODEL"}
    environment["VERITY_TRACE_DB"] = str(db)
    batch = subprocess.Popen(
        [sys.executable, "-m", "verity", "batch", str(tasks), "-o", str(out)],
        cwd=PROJECT_ROOT,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and batch.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode in (130, 0, 1), stderr  # it may have finished just before
    assert "Traceback" not in stderr
    done_first = _outcomes(out)
    assert done_first, stderr
    rest = verity("batch", str(tasks), "-o", str(tmp_path / "second.jsonl"), trace_db=db)
    assert rest.returncode in (0, 1), rest.stderr
    second = _outcomes(tmp_path / "second.jsonl")
    assert set(second) == {"a", "b"}
    for task_id, outcome in done_first.items():
        if outcome["outcome"] != "failed":  # a completed run is read back, never run again
            assert second[task_id]["resumed"] is True
            assert second[task_id]["run_id"] == outcome["run_id"]
    summary = rest.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"verity: batch {tasks.resolve()}: 2 of 2 tasks: ")
    right = sum(1 for outcome in second.values() if outcome["outcome"] == "right")
    assert f"{right} right" in summary
    assert all(o["outcome"] in ("right", "wrong", "failed") for o in second.values())
