"""`verity logs` and `verity show RUN`: read runs back from the trace database."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import json
from typing import Any

from verity.cli._common import add_trace_option, open_store
from verity.errors import UserError
from verity.terminal import printable
from verity.trace.store import TraceStore


def add_commands(commands: Any) -> None:
    """Add `logs` and `show` to the `verity` command's subparsers."""
    logs = commands.add_parser("logs", help="list recent runs from the trace database")
    logs.add_argument("-n", "--limit", type=int, default=20, help="how many runs (20)")
    add_trace_option(logs)

    show = commands.add_parser("show", help="show one run with its steps and tool calls")
    show.add_argument("run_id", help="a run id from `verity logs`")
    add_trace_option(show)
    logs.set_defaults(handler=lambda args: _logs_command(open_store(args), args.limit))
    show.set_defaults(handler=lambda args: _show_command(open_store(args), args.run_id))


def _logs_command(store: TraceStore, limit: int) -> int:
    for row in store.runs(limit=limit):
        answer = (row["answer"] or row["error"] or "").replace("\n", " ")[:60]
        verified = _verified_mark(row["verified"])
        _print(f"{row['id']}  {row['status']:<14} {verified:<3} {row['task'][:50]!r:<54} {answer}")
    return 0


def _verified_mark(verified: int | None) -> str:
    return "-" if verified is None else ("yes" if verified else "no")


def _print(text: str) -> None:
    print(printable(text))  # what servers and models wrote may hold escape sequences


def _show_command(store: TraceStore, run_id: str) -> int:
    record = store.run(run_id)
    if record is None:
        raise UserError(f"No run {run_id!r} in {store.path}. List runs with `verity logs`.")
    _print(f"run {record['id']}  {record['status']}  model {record['model']}")
    if record["parent_run_id"]:
        _print(f"consensus sample for run {record['parent_run_id']}")
    _print(f"task: {record['task']}")
    for approval in record["approvals"]:
        args = f"({approval['arguments']})" if approval["arguments"] is not None else ""
        _print(f"  step {approval['step']}: {approval['tool_name']}{args} {approval['outcome']} "
               f"by {approval['decided_by']}: {approval['reason']}")  # fmt: skip
    for call in record["model_calls"]:
        _print(f"  step {call['step']}: model {call['input_tokens']} in "
              f"({call['input_tokens_evaluated']} new), {call['output_tokens']} out")  # fmt: skip
        if call["reasoning"]:
            _print(f"    thought: {call['reasoning'][:300]}")
        for tool_call in (t for t in record["tool_calls"] if t["step"] == call["step"]):
            flag = " (error)" if tool_call["is_error"] else ""
            _print(f"    {tool_call['tool_name']}({tool_call['arguments']}) -> "
                  f"{tool_call['result'][:200]}{flag}")  # fmt: skip
        for verdict in (v for v in record["verdicts"] if v["step"] == call["step"]):
            _print_verdict(verdict, record["verdict_samples"])
    judged = [v for v in record["verdicts"] if v["scope"] == "answer" and v["checked"]]
    verified = record["verified"]
    if verified is None and judged and record["verify_rounds"] is None:  # recorded before m003
        verified = judged[-1]["ok"]
    mark = "" if verified is None else (" (verified)" if verified else " (unverified)")
    _print(f"answer: {record['answer'] or '-'}{mark if record['answer'] else ''}")
    if record["verify_rounds"] is not None:
        rounds = record["verify_rounds"]
        plural = "" if rounds == 1 else "s"
        outcome = "no verifier ran" if verified is None else f"{rounds} round{plural}"
        _print(f"verified: {_verified_mark(verified)} ({outcome})")
    if record["error"]:
        _print(f"error: {record['error']}")
    return 0


def _print_verdict(verdict: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    if not verdict["checked"]:
        return
    judged = "tool arguments" if verdict["scope"] == "tool_calls" else "answer"
    outcome = "accepted" if verdict["ok"] else "rejected"
    confidence = f", confidence {verdict['confidence']:.2f}" if verdict["confidence"] else ""
    _print(f"    verdict ({verdict['verifier']}, {judged}): {outcome}{confidence}")
    for finding in json.loads(verdict["findings"] or "[]"):
        mark = "ok  " if finding["ok"] else "FAIL"
        _print(f"      {mark} {finding['claim'][:120]}: {finding['evidence'][:160]}")
    for sample in (s for s in samples if s["verdict_id"] == verdict["id"]):
        agrees = "agrees" if sample["agrees"] else "differs"
        tokens = f"{sample['input_tokens']} in / {sample['output_tokens']} out"
        traced = f", run {sample['sample_run_id']}" if sample["sample_run_id"] else ""
        answer = sample["normalised"] or "(no answer)"
        _print(f"      sample seed {sample['seed']}: {answer} {agrees}, {tokens}{traced}")
