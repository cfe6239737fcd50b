"""`verity show RUN`'s tree: the run, each step with its model call, tool calls and verdicts, in
full text; reasoning folded unless asked for."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import json
from typing import Any

from verity.messages import verdict_label, verification_label
from verity.terminal import printable

__all__ = ["print_run"]

_STEP_SHOWN = 160
"""Characters shown of the corrected step an answer went on from."""


def _print(text: str) -> None:
    print(printable(text))  # what servers and models wrote may hold escape sequences


def _when(stamp: str | None) -> str:
    return (stamp or "")[:19].replace("T", " ") + (" UTC" if stamp else "-")


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _tokens(call: dict[str, Any]) -> str:
    if call["input_tokens"] is None:
        return "tokens unknown"
    new = call["input_tokens_evaluated"]
    fresh = f" ({new} new)" if new is not None and new != call["input_tokens"] else ""
    speed = call["output_tokens_per_s"]
    rate = f", {speed:.1f} tok/s" if speed else ""
    return f"{call['input_tokens']} in{fresh}, {call['output_tokens']} out{rate}"


def _block(prefix: str, label: str, text: str) -> None:
    """`label` then the text, every line of it under the prefix."""
    lines = printable(text).split("\n")  # split after: a lone \r must not start a line
    _print(f"{prefix}{label}{lines[0]}")
    for line in lines[1:]:
        _print(f"{prefix}{' ' * len(label)}{line}")


def print_run(record: dict[str, Any], *, reasoning: bool) -> None:
    """Print a run (as `query.full_run` gives it) as a tree."""
    _print(
        f"run {record['id']}  {record['status']}  model {record['model']}  "
        f"{_when(record['started_at'])}  {_seconds(record['duration_s'])}"
    )
    if record["parent_run_id"]:
        _print(f"consensus sample for run {record['parent_run_id']}")
    _block("", "task: ", record["task"] or "")
    steps = sorted(
        {c["step"] for c in record["model_calls"]} | {s["step"] for s in record["steps"]}
    )
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        outcome = next((s["outcome"] for s in record["steps"] if s["step"] == step), None)
        _print(f"{'└─' if last else '├─'} step {step}  {outcome or 'unfinished'}")
        _print_step(record, step, "   " if last else "│  ", reasoning=reasoning)
    _print_ending(record)


def _print_step(record: dict[str, Any], step: int, prefix: str, *, reasoning: bool) -> None:
    items: list[tuple[str, dict[str, Any]]] = [
        *(("approval", a) for a in record.get("approvals", []) if a["step"] == step),
        *(("model", c) for c in record["model_calls"] if c["step"] == step),
        *(("tool", t) for t in record["tool_calls"] if t["step"] == step),
        *(("verdict", v) for v in record["verdicts"] if v["step"] == step and v["checked"]),
    ]
    for index, (kind, item) in enumerate(items):
        last = index == len(items) - 1
        branch, inner = ("└─ ", "   ") if last else ("├─ ", "│  ")
        if kind == "model":
            purpose = "" if item.get("purpose", "agent") == "agent" else f" ({item['purpose']})"
            _print(
                f"{prefix}{branch}model{purpose}  {_tokens(item)}  {_seconds(item['duration_s'])}"
            )
            if item["reasoning"]:
                if reasoning:
                    _block(prefix + inner, "thought: ", item["reasoning"])
                else:
                    size = len(item["reasoning"])
                    _print(f"{prefix}{inner}thought: ({size} characters; --reasoning shows them)")
            if item["content"]:
                _block(prefix + inner, "says: ", item["content"])
            for problem in item["invalid_calls"] or []:
                _block(prefix + inner, "invalid call: ", problem)
        elif kind == "approval":
            called = "" if item["arguments"] is None else f"({json.dumps(item['arguments'])})"
            _print(
                f"{prefix}{branch}{item['tool_name']}{called} {item['outcome']} "
                f"by {item['decided_by']}: {item['reason']}"
            )
        elif kind == "tool":
            arguments = json.dumps(item["arguments"], ensure_ascii=False)
            error = "  (error)" if item["is_error"] else ""
            _print(
                f"{prefix}{branch}{item['tool_name']}({arguments})  "
                f"{_seconds(item['duration_s'])}{error}"
            )
            _block(prefix + inner, "-> ", item["result"] or "")
        else:
            _print_verdict(item, record["verdict_samples"], prefix + branch, prefix + inner)


def _print_verdict(
    verdict: dict[str, Any], samples: list[dict[str, Any]], head: str, prefix: str
) -> None:
    judged = "tool arguments" if verdict["scope"] == "tool_calls" else "answer"
    outcome = verdict_label(ok=bool(verdict["ok"]), conclusive=_flag(verdict["conclusive"]))
    confidence = f", confidence {verdict['confidence']:.2f}" if verdict["confidence"] else ""
    _print(f"{head}verdict ({verdict['verifier']}, {judged}): {outcome}{confidence}")
    for finding in verdict["findings"] or []:
        mark = "ok  " if finding["ok"] else "FAIL"
        _print(f"{prefix}{mark} {finding['claim']}: {finding['evidence']}")
    if verdict.get("resume_from"):  # the corrected step, the last line of the beginning
        step = verdict["resume_from"].rsplit("\n", 1)[-1][-_STEP_SHOWN:]
        _print(f"{prefix}went on from the corrected step: ...{printable(step)}")
    elif verdict["feedback"] and not verdict["ok"]:
        _block(prefix, "feedback: ", verdict["feedback"])
    for sample in (s for s in samples if s["verdict_id"] == verdict["id"]):
        agrees = "agrees" if sample["agrees"] else "differs"
        tokens = f"{sample['input_tokens']} in / {sample['output_tokens']} out"
        traced = f", run {sample['sample_run_id']}" if sample["sample_run_id"] else ""
        answer = sample["normalised"] or "(no answer)"
        _print(f"{prefix}sample seed {sample['seed']}: {answer} {agrees}, {tokens}{traced}")


def _print_ending(record: dict[str, Any]) -> None:
    judged = [v for v in record["verdicts"] if v["scope"] == "answer" and v["checked"]]
    verified = record["verified"]
    if verified is None and judged and record["verify_rounds"] is None:  # recorded before m003
        verified = judged[-1]["ok"]
    mark = "" if verified is None else f" ({verification_label(verified)})"
    if record["answer"]:
        _block("", "answer: ", record["answer"] + mark)
    else:
        _print("answer: -")
    if record["verify_rounds"] is not None:
        rounds = record["verify_rounds"]
        plural = "" if rounds == 1 else "s"
        outcome = "no verifier ran" if verified is None else f"{rounds} round{plural}"
        _print(f"verification: {verification_label(verified)} ({outcome})")
    if record["error"]:
        _block("", "error: ", record["error"])
    calls = record["model_calls"]
    if calls and all(c["input_tokens"] is not None for c in calls):
        total_in = sum(c["input_tokens"] for c in calls)
        total_out = sum(c["output_tokens"] for c in calls)
        plural = "" if len(calls) == 1 else "s"
        _print(f"tokens: {total_in} in, {total_out} out over {len(calls)} model call{plural}")
