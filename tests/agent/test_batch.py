"""Batch runs: the tasks file, resuming from the trace, scoring and bounded concurrency (loop
logic on a scripted model; the real model runs `verity batch` in
tests/agent/cli/test_cli_batch.py)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from verity import RunSettings, TraceRecorder, TraceStore, run
from verity.batch import (
    BatchOutcome,
    BatchTask,
    RunTask,
    completed_tasks,
    read_tasks,
    run_batch,
)
from verity.errors import RunLimitExceeded, UserError
from verity.messages import RunResult
from verity.testing import ScriptedModel, answer


def test_read_tasks_takes_objects_and_strings_and_numbers_ids_by_line(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    lines = ['{"id": "a", "task": "What is 2 + 3?", "expected": 5}', "", '"What is 4 * 4?"']
    path.write_text("\n".join(lines))
    assert read_tasks(path) == [
        BatchTask(id="a", task="What is 2 + 3?", expected="5"),
        BatchTask(id="line-3", task="What is 4 * 4?"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "tasks.jsonl:1: not JSON"),
        ('{"question": "x"}', 'tasks.jsonl:1: each line is an object with a "task" string'),
        ('{"task": "  "}', "tasks.jsonl:1: the task is empty."),
        ('{"task": "x", "expected": [1]}', 'tasks.jsonl:1: "expected" must be'),
        ('{"task": "x", "id": "a"}\n{"task": "y", "id": "a"}', "tasks.jsonl:2: the id 'a' is used"),
    ],
)
def test_read_tasks_names_the_line_and_what_is_wrong(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(line)
    with pytest.raises(UserError) as raised:
        read_tasks(path)
    assert message in str(raised.value)


def _runner(store: TraceStore, answers: dict[str, str], ran: list[str]) -> RunTask:
    async def run_task(task: str, labels: dict[str, str]) -> RunResult:
        ran.append(task)
        if answers[task] == "limit":
            raise RunLimitExceeded("No final answer after 1 steps.", max_steps=1, run_id="x")
        return await run(
            task,
            model=ScriptedModel([answer(answers[task])]),
            settings=RunSettings(labels=labels),
            hooks=TraceRecorder(store),
        )

    return run_task


def test_a_second_invocation_runs_only_what_did_not_complete(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    tasks = [
        BatchTask("a", "What is 2 + 3?", "5"),
        BatchTask("b", "What is 3 * 3?", "9"),
        BatchTask("c", "What is 1 + 1?"),
    ]
    answers = {"What is 2 + 3?": "5", "What is 3 * 3?": "limit", "What is 1 + 1?": "2"}
    ran: list[str] = []
    seen: list[BatchOutcome] = []
    first = anyio.run(
        lambda: run_batch(
            tasks, _runner(store, answers, ran), batch="b1", store=store, on_outcome=seen.append
        )
    )
    assert {o.id: o.outcome for o in first} == {"a": "right", "b": "failed", "c": "answered"}
    assert "No final answer" in (next(o for o in first if o.id == "b").error or "")
    assert set(completed_tasks(store, "b1")) == {"a", "c"}
    answers["What is 3 * 3?"] = "10"
    ran.clear()
    second = anyio.run(
        lambda: run_batch(
            tasks, _runner(store, answers, ran), batch="b1", store=store, on_outcome=seen.append
        )
    )
    assert ran == ["What is 3 * 3?"]
    assert {o.id: (o.outcome, o.resumed) for o in second} == {
        "a": ("right", True),
        "b": ("wrong", False),
        "c": ("answered", True),
    }
    assert json.loads(second[0].as_json())["run_id"] == first[0].run_id
    # another batch name, or a changed task text, is not taken for done
    assert completed_tasks(store, "other") == {}


def test_no_more_than_jobs_tasks_run_at_once(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    tasks = [BatchTask(str(i), f"task {i}") for i in range(6)]
    running, most = 0, 0

    async def run_task(task: str, labels: dict[str, str]) -> RunResult:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.05)
        running -= 1
        return await run(
            task,
            model=ScriptedModel([answer("ok")]),
            settings=RunSettings(labels=labels),
            hooks=TraceRecorder(store),
        )

    outcomes = anyio.run(
        lambda: run_batch(
            tasks, run_task, batch="j", store=store, jobs=2, on_outcome=lambda o: None
        )
    )
    assert len(outcomes) == 6 and most == 2
    with pytest.raises(UserError, match="-j must be at least 1"):
        anyio.run(
            lambda: run_batch(
                tasks, run_task, batch="j", store=store, jobs=0, on_outcome=lambda o: None
            )
        )
