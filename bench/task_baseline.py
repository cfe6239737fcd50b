"""The no-checks baseline of a task, read from the trace of the run with the checks.

Decoding is greedy, and the only things `--no-answer-checks` changes are the answer checks
(which judge a candidate answer) and the exit for servers that did not start (which is decided
after the answer). So a run without the checks goes exactly as the run with them up to the
first candidate answer, and then stops there with exit 0: the first answer the checks judged is
the baseline's answer, and its tokens and time are the checked run's up to that verdict.
Reading it from the trace saves a second run per task (a third to half of the bench's time).
Where the checked run judged no answer (killed, crashed, out of steps before any answer) there
is nothing to read, and the bench runs the baseline itself. `--baseline run` runs it always and
records what this module reads beside it (`derived_answer`), to check the two agree.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from bench.task_catalog import Task
from bench.task_scoring import Outcome, classify

__all__ = ["first_answer", "derived_baseline"]

_FIRST_JUDGED = """
select v.step, v.created_at, r.ended_at, r.started_at, r.id from verdicts v
join runs r on r.id = v.run_id
where v.scope = 'answer' and r.parent_run_id is null
order by v.id limit 1
"""
_ANSWER_AT = """
select content from model_calls where run_id = ? and step = ? and purpose = 'agent'
order by id desc limit 1
"""
_TOKENS_UP_TO = """
select coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) from model_calls
where run_id = ? and step <= ?
"""


def first_answer(trace_db: Path) -> tuple[str, int, float] | None:
    """The first answer the checks judged: its text, the tokens spent up to it, and the seconds
    from that verdict to the run's end; None when no answer was judged."""
    if not trace_db.exists():
        return None
    connection = sqlite3.connect(f"file:{trace_db}?mode=ro", uri=True)
    try:
        row = connection.execute(_FIRST_JUDGED).fetchone()
        if row is None:
            return None
        step, judged_at, ended_at, _, run_id = row
        answer = connection.execute(_ANSWER_AT, (run_id, step)).fetchone()
        tokens = connection.execute(_TOKENS_UP_TO, (run_id, step)).fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    if answer is None:
        return None
    after = _seconds_between(judged_at, ended_at) if ended_at else 0.0
    return str(answer[0] or "").strip(), int(tokens), after


def derived_baseline(task: Task, checked: Outcome, trace_db: Path) -> Outcome | None:
    """The baseline outcome of `task` read from the checked run's trace, or None."""
    found = first_answer(trace_db)
    if found is None:
        return None
    answer, tokens, after = found
    outcome = Outcome(
        task_id=task.id,
        category=task.category,
        model=checked.model,
        mode="baseline",
        exit_code=0,
        answer=answer,
        status="answered",
        reason="read from the checked run's trace (its first answer)",
        verified=None,
        seconds=round(max(0.0, checked.seconds - after), 1),
        tokens=tokens,
    )
    outcome.verdict, outcome.right_refused = classify(
        task.rule, exit_code=0, answer=answer, verified=None
    )
    return outcome


def _seconds_between(start: str, end: str) -> float:
    return max(0.0, (_parse(end) - _parse(start)).total_seconds())


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00").replace(" UTC", ""))
