"""The `verity` command: argv → settings → run → print. Each VerityError maps to an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from verity.cli_mcp import add_mcp_commands, add_mcp_options, mcp_command, mcp_toolsets
from verity.cli_model import add_server_options, server_model
from verity.errors import ModelError, RunError, UserError, VerityError
from verity.hooks import CompositeHooks, RunHooks
from verity.loop import run
from verity.messages import RunResult
from verity.models.embedded import embedded_model_path
from verity.models.llama_cpp import LlamaCppModel, check_gguf_file
from verity.models.openai_compat import OpenAICompatModel
from verity.progress import ProgressPrinter
from verity.settings import ModelSettings, RunSettings, default_trace_path
from verity.solver import seeded_solver
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset, Toolset
from verity.trace.store import TraceRecorder, TraceStore
from verity.verify import VERIFY_SPECS, Verifier, build_verifier

__all__ = ["main"]

EXIT_USER_ERROR = 2
EXIT_MODEL_ERROR = 3
EXIT_RUN_ERROR = 4
EXIT_INTERRUPTED = 130

# At 0.5B parameters sampling noise decides whether the model uses the calculator or guesses,
# so the embedded demo model decodes greedily; any --model gets the R1 defaults (0.6 / 0.95).
EMBEDDED_MODEL_TEMPERATURE = 0.0
CONSENSUS_TEMPERATURE = 0.7

# ModelSettings field -> the argparse dest of its `verity run` option
_MODEL_OPTIONS = {
    "n_ctx": "n_ctx",
    "n_threads": "threads",
    "n_gpu_layers": "n_gpu_layers",
    "flash_attn": "flash_attn",
    "temperature": "temperature",
    "seed": "seed",
    "max_tokens": "max_tokens",
    "max_thinking_tokens": "max_thinking_tokens",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verity",
        description="Run a local reasoning model as a dependable tool-using agent.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_cmd = commands.add_parser("run", help="run an agent on a task and print the answer")
    run_cmd.add_argument("task", help="what the agent should do")
    run_cmd.add_argument(
        "--model", type=Path, help="GGUF model file (default: $VERITY_MODEL, else embedded model)"
    )
    run_cmd.add_argument("--max-steps", type=int, default=8, help="model calls allowed (8)")
    run_cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    run_cmd.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _add_verify_options(run_cmd)
    _add_trace_option(run_cmd)
    add_mcp_options(run_cmd)
    add_server_options(run_cmd)
    model = run_cmd.add_argument_group("model settings")
    model.add_argument("--n-ctx", type=int, help="context window in tokens (8192)")
    model.add_argument("--threads", type=int, help="CPU threads (llama.cpp's choice)")
    model.add_argument("--n-gpu-layers", type=int, help="layers to offload to the GPU, -1 all (0)")
    model.add_argument("--flash-attn", action="store_true", default=None, help="flash attention")
    model.add_argument("--temperature", type=float, help="sampling temperature, 0 = greedy")
    model.add_argument("--seed", type=int, help="sampling seed (0)")
    model.add_argument("--max-tokens", type=int, help="largest completion per model call (1024)")
    model.add_argument(
        "--max-thinking-tokens", type=int, metavar="N",
        help="close a <think> block after N tokens and ask for the action (no cap)",
    )  # fmt: skip

    logs = commands.add_parser("logs", help="list recent runs from the trace database")
    logs.add_argument("-n", "--limit", type=int, default=20, help="how many runs (20)")
    _add_trace_option(logs)

    show = commands.add_parser("show", help="show one run with its steps and tool calls")
    show.add_argument("run_id", help="a run id from `verity logs`")
    _add_trace_option(show)
    add_mcp_commands(commands)
    return parser


def _add_verify_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("verification")
    group.add_argument(
        "--verify", metavar="SPEC", default=os.environ.get("VERITY_VERIFY", "none"),
        help=f"check the answer before accepting it: {VERIFY_SPECS} (none, or $VERITY_VERIFY)",
    )  # fmt: skip
    group.add_argument(
        "--verifier-model", type=Path, metavar="PATH",
        help="GGUF model that self-check judges with, same model settings (default: the run's)",
    )  # fmt: skip
    group.add_argument(
        "--verify-rounds",
        type=int,
        default=3,
        help="answers verified before the best is returned unverified (3)",
    )
    group.add_argument("--check-tool-arguments", action="store_true",
                       help="record a check of each step's tool-call arguments")  # fmt: skip


def _add_trace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-db", type=Path, help="trace database (default: $VERITY_TRACE_DB or user data dir)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `verity` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run_command(args)
        if args.command == "mcp":
            return mcp_command(args)
        store = TraceStore(args.trace_db or default_trace_path())
        if args.command == "logs":
            return _logs_command(store, args.limit)
        return _show_command(store, args.run_id)
    except UserError as exc:
        print(f"verity: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModelError as exc:
        print(f"verity: model error: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    except RunError as exc:
        print(f"verity: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except VerityError as exc:
        print(f"verity: error: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except KeyboardInterrupt:
        print("verity: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _model_settings(args: argparse.Namespace, *, embedded: bool) -> ModelSettings:
    chosen = {field: getattr(args, dest) for field, dest in _MODEL_OPTIONS.items()}
    if embedded and chosen["temperature"] is None:
        chosen["temperature"] = EMBEDDED_MODEL_TEMPERATURE
    try:
        return ModelSettings(**{k: v for k, v in chosen.items() if v is not None})
    except ValidationError as exc:
        raise _option_error(exc.errors()[0]) from None


def _option_error(error: ErrorDetails) -> UserError:
    """The first invalid model setting, named by its command-line option."""
    field = str(error["loc"][0])
    option = "--" + _MODEL_OPTIONS[field].replace("_", "-")
    if error["type"] == "greater_than_equal":
        requirement = f"must be at least {error['ctx']['ge']}"
    else:
        requirement = error["msg"].replace("Input should be", "must be")
    return UserError(f"{option} {requirement}, not {error['input']}.", field=field)


def _run_command(args: argparse.Namespace) -> int:
    if not args.task.strip():
        raise UserError("The task is empty. Say what the agent should do, e.g. "
                        "verity run \"What is 1234 * 5678 + 17?\"", field="task")  # fmt: skip
    if args.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, not {args.max_steps}.", field="max_steps")
    remote = server_model(args)
    if remote is not None:
        return _run_on_server(args, remote)
    if args.verifier_model is not None:  # before the embedded model is fetched for nothing
        check_gguf_file(args.verifier_model, option="--verifier-model")
    configured = args.model or (
        Path(os.environ["VERITY_MODEL"]) if os.environ.get("VERITY_MODEL") else None
    )
    # settings first: a bad option must not wait for the embedded model to be assembled
    model_settings = _model_settings(args, embedded=configured is None)
    model = LlamaCppModel(configured or embedded_model_path(), model_settings)
    # a second instance even for the same file: one llama.cpp context per model, and the run's
    # KV prefix stays valid while the verifier judges
    judge = LlamaCppModel(args.verifier_model, model.settings) if args.verifier_model else model
    store = TraceStore(args.trace_db or default_trace_path())
    recorder = TraceRecorder(store)
    hooks = [recorder] if args.quiet else [recorder, ProgressPrinter()]
    toolsets = [FunctionToolset([calculator]), *mcp_toolsets(args, model)]
    verifier, settings = _verification(args, model, judge, toolsets, recorder)
    try:
        result = anyio.run(
            lambda: run(
                args.task,
                model=model,
                toolsets=toolsets,
                verifier=verifier,
                settings=settings,
                hooks=CompositeHooks(hooks),
            )
        )
    finally:
        model.close()
        if judge is not model:
            judge.close()
    _print_result(result, store, as_json=args.json)
    return 0


def _run_on_server(args: argparse.Namespace, model: OpenAICompatModel) -> int:
    store = TraceStore(args.trace_db or default_trace_path())
    recorder = TraceRecorder(store)
    hooks = [recorder] if args.quiet else [recorder, ProgressPrinter()]
    toolsets = [FunctionToolset([calculator]), *mcp_toolsets(args, model)]
    settings = RunSettings(max_steps=args.max_steps, check_tool_arguments=args.check_tool_arguments)

    async def run_and_close() -> RunResult:
        try:
            return await run(args.task, model=model, toolsets=toolsets, settings=settings,
                             hooks=CompositeHooks(hooks))  # fmt: skip
        finally:
            await model.aclose()

    _print_result(anyio.run(run_and_close), store, as_json=args.json)
    return 0


def _verification(
    args: argparse.Namespace,
    model: LlamaCppModel,
    judge: LlamaCppModel,
    toolsets: list[Toolset],
    recorder: RunHooks,
) -> tuple[Verifier | None, RunSettings]:
    if args.verify_rounds < 1:
        raise UserError(f"--verify-rounds must be at least 1, not {args.verify_rounds}.",
                        field="verify_rounds")  # fmt: skip
    # consensus needs samples that can differ: a greedy model samples them at 0.7
    temperature = model.settings.temperature or CONSENSUS_TEMPERATURE
    solve = seeded_solver(
        lambda seed: model.with_sampling(seed=seed, temperature=temperature),
        toolsets=toolsets,
        settings=RunSettings(max_steps=args.max_steps),
        hooks=recorder,  # each consensus sample is a run in the trace, linked to this one
    )
    verifier = build_verifier(args.verify, model=judge, solve=solve, toolsets=toolsets)
    settings = RunSettings(max_steps=args.max_steps, max_verify_rounds=args.verify_rounds,
                           check_tool_arguments=args.check_tool_arguments)  # fmt: skip
    return verifier, settings


def _print_result(result: RunResult, store: TraceStore, *, as_json: bool) -> None:
    if as_json:
        payload = {
            "run_id": result.run_id,
            "answer": result.answer,
            "boxed_answer": result.boxed_answer,
            "verified": result.verified,
            "steps": max((s.step for s in result.steps), default=0),
            "usage": result.usage.model_dump(),
            "trace_db": str(store.path),
        }
        print(json.dumps(payload))
        return
    # a task that asks for \boxed{} wants the value; the full answer stays in the trace
    print(result.answer if result.boxed_answer is None else result.boxed_answer)
    sys.stdout.flush()
    print(f"verity: run {result.run_id} stored in {store.path}", file=sys.stderr)


def _logs_command(store: TraceStore, limit: int) -> int:
    for row in store.runs(limit=limit):
        answer = (row["answer"] or row["error"] or "").replace("\n", " ")[:60]
        verified = _verified_mark(row["verified"])
        print(f"{row['id']}  {row['status']:<14} {verified:<3} {row['task'][:50]!r:<54} {answer}")
    return 0


def _verified_mark(verified: int | None) -> str:
    return "-" if verified is None else ("yes" if verified else "no")


def _show_command(store: TraceStore, run_id: str) -> int:
    record = store.run(run_id)
    if record is None:
        raise UserError(f"No run {run_id!r} in {store.path}. List runs with `verity logs`.")
    print(f"run {record['id']}  {record['status']}  model {record['model']}")
    if record["parent_run_id"]:
        print(f"consensus sample for run {record['parent_run_id']}")
    print(f"task: {record['task']}")
    for call in record["model_calls"]:
        print(f"  step {call['step']}: model {call['input_tokens']} in "
              f"({call['input_tokens_evaluated']} new), {call['output_tokens']} out")  # fmt: skip
        if call["reasoning"]:
            print(f"    thought: {call['reasoning'][:300]}")
        for tool_call in (t for t in record["tool_calls"] if t["step"] == call["step"]):
            flag = " (error)" if tool_call["is_error"] else ""
            print(f"    {tool_call['tool_name']}({tool_call['arguments']}) -> "
                  f"{tool_call['result'][:200]}{flag}")  # fmt: skip
        for verdict in (v for v in record["verdicts"] if v["step"] == call["step"]):
            _print_verdict(verdict, record["verdict_samples"])
    judged = [v for v in record["verdicts"] if v["scope"] == "answer" and v["checked"]]
    verified = record["verified"]
    if verified is None and judged and record["verify_rounds"] is None:  # recorded before m003
        verified = judged[-1]["ok"]
    mark = "" if verified is None else (" (verified)" if verified else " (unverified)")
    print(f"answer: {record['answer'] or '-'}{mark if record['answer'] else ''}")
    if record["verify_rounds"] is not None:
        rounds = record["verify_rounds"]
        plural = "" if rounds == 1 else "s"
        outcome = "no verifier ran" if verified is None else f"{rounds} round{plural}"
        print(f"verified: {_verified_mark(verified)} ({outcome})")
    if record["error"]:
        print(f"error: {record['error']}")
    return 0


def _print_verdict(verdict: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    if not verdict["checked"]:
        return
    judged = "tool arguments" if verdict["scope"] == "tool_calls" else "answer"
    outcome = "accepted" if verdict["ok"] else "rejected"
    confidence = f", confidence {verdict['confidence']:.2f}" if verdict["confidence"] else ""
    print(f"    verdict ({verdict['verifier']}, {judged}): {outcome}{confidence}")
    for finding in json.loads(verdict["findings"] or "[]"):
        mark = "ok  " if finding["ok"] else "FAIL"
        print(f"      {mark} {finding['claim'][:120]}: {finding['evidence'][:160]}")
    for sample in (s for s in samples if s["verdict_id"] == verdict["id"]):
        agrees = "agrees" if sample["agrees"] else "differs"
        tokens = f"{sample['input_tokens']} in / {sample['output_tokens']} out"
        traced = f", run {sample['sample_run_id']}" if sample["sample_run_id"] else ""
        answer = sample["normalised"] or "(no answer)"
        print(f"      sample seed {sample['seed']}: {answer} {agrees}, {tokens}{traced}")
