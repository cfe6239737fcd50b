"""The no-checks baseline read from a checked run's trace (bench/task_baseline.py), on real
trace databases written by real runs of the loop (a scripted model: loop logic only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.task_baseline import derived_baseline, first_answer
from bench.task_catalog import TASKS
from bench.task_scoring import Outcome
from verity import Agent, RunLimitExceeded
from verity.testing import ScriptedModel, answer, calls

SUM: tuple[str, dict[str, object]] = ("calculator", {"expression": "1234 * 5678"})


def _traced(database: Path, *responses: object) -> None:
    model = ScriptedModel(list(responses))  # type: ignore[arg-type]
    agent = Agent(model=model, trace_db=database)
    agent.run_sync("What is 1234 * 5678?")
    agent.close()
    model.assert_complete()


def test_the_first_judged_answer_is_the_baseline_answer(tmp_path: Path) -> None:
    database = tmp_path / "trace.db"
    # The checks refuse the bare None; the run goes on to the right answer.
    _traced(database, calls(SUM), answer("None"), answer("7006652"))
    found = first_answer(database)
    assert found is not None
    text, tokens, after = found
    assert text == "None" and tokens >= 0 and after >= 0
    one_call = next(task for task in TASKS if task.category == "one-call")
    checked = Outcome(one_call.id, one_call.category, "embedded", "checks", 0, "7006652",
                      "answered", None, None, seconds=10.0, tokens=100)  # fmt: skip
    baseline = derived_baseline(one_call, checked, database)
    assert baseline is not None
    assert (baseline.mode, baseline.exit_code, baseline.answer) == ("baseline", 0, "None")
    assert baseline.verdict == "silent" and baseline.seconds <= checked.seconds


def test_an_answer_accepted_at_once_is_the_baseline_answer_too(tmp_path: Path) -> None:
    database = tmp_path / "trace.db"
    _traced(database, calls(SUM), answer("7006652"))
    assert first_answer(database) is not None
    assert first_answer(database)[0] == "7006652"  # type: ignore[index]


def test_nothing_is_read_where_no_answer_was_judged(tmp_path: Path) -> None:
    assert first_answer(tmp_path / "missing.db") is None
    database = tmp_path / "trace.db"
    model = ScriptedModel([calls(SUM)])
    agent = Agent(model=model, trace_db=database, settings={"max_steps": 1})
    with pytest.raises(RunLimitExceeded):
        agent.run_sync("What is 1234 * 5678?")
    agent.close()
    assert first_answer(database) is None
