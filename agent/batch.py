"""Batch runs: tasks from a JSON Lines file, run with bounded concurrency, resumable from the
trace (a task whose run completed is not run again) and scored against expected answers."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from verity.errors import ModelError, RunError, UserError
from verity.messages import RunResult
from verity.trace.store import TraceStore
from verity.verify import same_answer

__all__ = [
    "BATCH_LABEL",
    "TASK_LABEL",
    "BatchOutcome",
    "BatchTask",
    "completed_tasks",
    "read_tasks",
    "run_batch",
]

BATCH_LABEL = "batch"
"""The run label naming the batch a run belongs to (`RunSettings.labels`)."""
TASK_LABEL = "batch_task"
"""The run label naming the batch task a run answers."""

Outcome = Literal["right", "wrong", "answered", "unverified", "failed"]
RunTask = Callable[[str, dict[str, str]], Awaitable[RunResult]]
"""Runs one task with the given run labels and returns its result."""


@dataclass(frozen=True)
class BatchTask:
    """One line of a tasks file."""

    id: str
    task: str
    expected: str | None = None
    """The right answer, compared as `verity.verify.same_answer` does (numbers as numbers)."""


@dataclass
class BatchOutcome:
    """What became of one task: one line of the results file."""

    id: str
    task: str
    outcome: Outcome
    """right/wrong (an expected answer was given), answered (none was), unverified (a verifier
    ran and did not confirm it), failed (no answer: the reason is in `error`)."""
    answer: str | None = None
    expected: str | None = None
    verified: bool | None = None
    run_id: str | None = None
    error: str | None = None
    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    resumed: bool = False
    """The task's run completed in an earlier invocation: read from the trace, not run again."""

    def as_json(self) -> str:
        """The outcome as one line of JSON."""
        return json.dumps(asdict(self), ensure_ascii=False)


def read_tasks(path: Path) -> list[BatchTask]:
    """The tasks of a JSON Lines file: each line `{"task": ..., "id"?: ..., "expected"?: ...}`
    (or a JSON string, the task alone); blank lines are skipped, ids default to `line-N`.

    Raises:
        UserError: the file cannot be read, a line is not such an object, or two share an id.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"Cannot read the tasks file {path}: {exc}.", field="tasks") from None
    tasks: list[BatchTask] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        task = _task(path, number, line)
        if task.id in seen:
            raise UserError(f"{path}:{number}: the id {task.id!r} is used twice.", field="tasks")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise UserError(f"{path} holds no tasks (one JSON object per line).", field="tasks")
    return tasks


def _task(path: Path, number: int, line: str) -> BatchTask:
    where = f"{path}:{number}"
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not JSON ({exc.msg}).", field="tasks") from None
    if isinstance(value, str):
        value = {"task": value}
    if not isinstance(value, dict) or not isinstance(value.get("task"), str):
        raise UserError(
            f'{where}: each line is an object with a "task" string, e.g. '
            '{"id": "q1", "task": "What is 2 + 3?", "expected": "5"}.',
            field="tasks",
        )
    if not value["task"].strip():
        raise UserError(f"{where}: the task is empty.", field="tasks")
    expected = value.get("expected")
    if expected is not None and not isinstance(expected, str | int | float):
        raise UserError(f'{where}: "expected" must be a string or a number.', field="tasks")
    task_id = value.get("id", f"line-{number}")
    if not isinstance(task_id, str | int) or isinstance(task_id, bool):
        raise UserError(f'{where}: "id" must be a string or a number.', field="tasks")
    return BatchTask(
        id=str(task_id), task=value["task"], expected=None if expected is None else str(expected)
    )


def completed_tasks(store: TraceStore, batch: str) -> dict[str, dict[str, Any]]:
    """The completed runs of a batch in the trace, by task id (the latest when several)."""
    rows = store.read(
        "select id, task, answer, error, verified, config from runs where status = 'completed' "
        "and json_extract(config, '$.run.labels.' || ?) = ? order by started_at, rowid",
        [BATCH_LABEL, batch],
    )
    done: dict[str, dict[str, Any]] = {}
    for row in rows:
        labels = json.loads(row["config"] or "{}").get("run", {}).get("labels", {})
        done[labels.get(TASK_LABEL, "")] = row
    return done


def _judged(task: BatchTask, answer: str, verified: bool | None) -> Outcome:
    if task.expected is not None:
        return "right" if same_answer(answer, task.expected) else "wrong"
    return "unverified" if verified is False else "answered"


def _resumed(task: BatchTask, row: dict[str, Any]) -> BatchOutcome:
    verified = None if row["verified"] is None else bool(row["verified"])
    answer = row["answer"] or ""
    return BatchOutcome(
        id=task.id,
        task=task.task,
        outcome="failed" if row["error"] else _judged(task, answer, verified),
        error=row["error"],
        answer=answer,
        expected=task.expected,
        verified=verified,
        run_id=row["id"],
        resumed=True,
    )


async def _run_one(task: BatchTask, batch: str, run_task: RunTask) -> BatchOutcome:
    labels = {BATCH_LABEL: batch, TASK_LABEL: task.id}
    started = time.perf_counter()
    outcome = BatchOutcome(id=task.id, task=task.task, outcome="failed", expected=task.expected)
    try:
        result = await run_task(task.task, labels)
    except (RunError, ModelError) as exc:  # this task failed; the batch goes on
        outcome.error = str(exc)
        outcome.run_id = getattr(exc, "run_id", None)
    else:
        outcome.answer, outcome.verified, outcome.run_id = (
            result.answer,
            result.verified,
            result.run_id,
        )
        if result.status in ("rejected", "tools_unavailable"):  # an answer not to rely on
            outcome.error = result.reason
        else:
            outcome.outcome = _judged(task, result.answer, result.verified)
        outcome.input_tokens = result.usage.prompt_tokens
        outcome.output_tokens = result.usage.completion_tokens
    outcome.seconds = round(time.perf_counter() - started, 3)
    return outcome


async def run_batch(
    tasks: Sequence[BatchTask],
    run_task: RunTask,
    *,
    batch: str,
    store: TraceStore,
    jobs: int = 1,
    on_outcome: Callable[[BatchOutcome], None],
) -> list[BatchOutcome]:
    """Run every task not already completed in the trace, at most `jobs` at once; report each
    outcome to `on_outcome` as it is known (those read from the trace first).

    Raises:
        UserError: `jobs` is below 1, or a run was refused as bad input.
    """
    if jobs < 1:
        raise UserError(f"-j must be at least 1, not {jobs}.", field="jobs")
    done = completed_tasks(store, batch)
    outcomes: list[BatchOutcome] = []
    pending = []
    for task in tasks:
        if task.id in done and done[task.id]["task"] == task.task:
            outcomes.append(_resumed(task, done[task.id]))
            on_outcome(outcomes[-1])
        else:
            pending.append(task)
    limiter = anyio.CapacityLimiter(jobs)

    async def one(task: BatchTask) -> None:
        async with limiter:
            outcome = await _run_one(task, batch, run_task)
        outcomes.append(outcome)
        on_outcome(outcome)

    async with anyio.create_task_group() as group:
        for task in pending:
            group.start_soon(one, task)
    return outcomes
