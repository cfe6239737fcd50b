"""How the task benchmark judges one run (right, silent or honest failure) and its table."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean

from bench.bfcl_stats import wilson
from bench.task_catalog import CATEGORIES
from bench.task_rules import Rule

__all__ = ["Outcome", "classify", "table"]

RIGHT, SILENT, HONEST = "right", "silent", "honest"
MODES = ("checks", "baseline")


@dataclass
class Outcome:
    """One `verity run` of one task, as a script sees it."""

    task_id: int
    category: str
    model: str
    mode: str
    """`checks` (answer checks on) or `baseline` (the no-checks flag)."""
    exit_code: int | None
    """None: killed at the per-task timeout."""
    answer: str | None
    status: str | None
    reason: str | None
    verified: bool | None
    seconds: float
    tokens: int
    verdict: str = ""
    right_refused: bool = False
    """The answer was right but the run exited non-zero (a check refused it)."""
    derived_answer: str | None = None
    """With `--baseline run`, on a checked run: the baseline answer its trace gives
    (bench/task_baseline.py), to compare with the baseline that ran."""


def classify(
    rule: Rule, *, exit_code: int | None, answer: str | None, verified: bool | None
) -> tuple[str, bool]:
    """The verdict on one run and whether a right answer was refused.

    A task with an answer is right only when the run exits 0 with it; a wrong, empty or
    refused answer with exit 0 (or marked verified) is a silent failure; any other non-zero
    exit is an honest one. When the right outcome is a failure (no tool can answer, a server
    fails to start), a non-zero exit is right, and so is exit 0 with an answer that says it
    cannot (for the rules that accept one); any other exit 0 is a silent failure.
    """
    failed = exit_code != 0
    accepted = rule.accepts(answer)
    if rule.expects_answer:
        if not failed and accepted:
            return RIGHT, False
        if failed and verified is not True:
            return HONEST, accepted
        return SILENT, False
    return (RIGHT if failed or accepted else SILENT), False


def _interval(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "-"
    right = sum(o.verdict == RIGHT for o in outcomes)
    low, high = wilson(right, len(outcomes))
    return f"{100 * right / len(outcomes):.0f}% [{100 * low:.0f}-{100 * high:.0f}]"


def _exit0_right(outcomes: list[Outcome]) -> str:
    exit0 = [o for o in outcomes if o.exit_code == 0]
    if not exit0:
        return "-"
    return f"{sum(o.verdict == RIGHT for o in exit0)}/{len(exit0)}"


def _row(label: str, by_mode: dict[str, list[Outcome]], baseline_run: bool) -> str:
    checks, base = by_mode["checks"], by_mode["baseline"]

    def pair(render: str) -> str:
        ours = _cell(render, checks)
        return f"{ours} / {_cell(render, base) if baseline_run else 'same'}"

    return (
        f"| {label} | {len(checks)} | {pair('right')} | {pair('silent')} | {pair('honest')} "
        f"| {pair('exit0')} | {sum(o.right_refused for o in checks)} | {pair('seconds')} "
        f"| {pair('tokens')} |"
    )


def _cell(render: str, outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "-"
    if render == "right":
        return _interval(outcomes)
    if render in (SILENT, HONEST):
        return str(sum(o.verdict == render for o in outcomes))
    if render == "exit0":
        return _exit0_right(outcomes)
    if render == "seconds":
        return f"{mean(o.seconds for o in outcomes):.0f}"
    return f"{mean(o.tokens for o in outcomes):.0f}"


def table(outcomes: list[Outcome], *, baseline_run: bool) -> str:
    """A Markdown table per model: each category and all, checks / baseline in each cell."""
    lines = []
    for model in sorted({o.model for o in outcomes}):
        lines += [
            f"\n**{model}** (each cell: with answer checks / baseline without"
            f"{'' if baseline_run else ': same, the flag does not exist yet'})\n",
            "| category | n | right % [95% CI] | silent | honest | exit-0 right | right refused "
            "| s/task | tokens/task |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        mine = [o for o in outcomes if o.model == model]
        for category in (*CATEGORIES, "all"):
            chosen = [o for o in mine if category in ("all", o.category)]
            by_mode = {mode: [o for o in chosen if o.mode == mode] for mode in MODES}
            if by_mode["checks"]:
                lines.append(_row(category, by_mode, baseline_run))
    return "\n".join(lines)
