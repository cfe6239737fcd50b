"""`verity run TASK`: run an agent on a task and print the answer."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from verity.agent import Agent, AgentConfig
from verity.cli._common import (
    EXIT_REJECTED,
    EXIT_TOOLS_UNAVAILABLE,
    EXIT_UNVERIFIED,
    add_trace_option,
    trace_outcome,
)
from verity.cli._server_options import add_server_options, check_server_options
from verity.cli._signals import run_interruptibly
from verity.cli.mcp import add_mcp_options, configured_servers, terminal_approvals
from verity.errors import RunLimitExceeded, UserError
from verity.messages import Message, RunResult, VerifyStep
from verity.models.refs import EMBEDDED_REF
from verity.pricing import Price, load_prices
from verity.progress import ProgressPrinter
from verity.settings import ModelSettings, RunSettings
from verity.terminal import printable
from verity.trace.conversation import (
    CONTINUES_LABEL,
    CONVERSATION_LABEL,
    conversation_of,
    conversation_start,
)
from verity.trace.query import resolve_run_id
from verity.trace.recorder import TraceRecorder
from verity.trace.usage import priced_usage
from verity.verify import VERIFY_SPECS

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
    "prefix_cache": "prefix_cache",
    "prefix_cache_dir": "prefix_cache_dir",
    "prefix_cache_max_bytes": "prefix_cache_max_bytes",
}


def add_commands(commands: Any) -> None:
    """Add `run` to the `verity` command's subparsers."""
    run_cmd = commands.add_parser("run", help="run an agent on a task and print the answer")
    run_cmd.add_argument(
        "task", nargs="?", help="what the agent should do; '-' or none: read it from stdin"
    )
    run_cmd.add_argument("--system", metavar="PROMPT", help="system prompt replacing Verity's")
    run_cmd.add_argument("--max-steps", type=int, help="model calls allowed (8)")
    run_cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    run_cmd.add_argument(
        "--quiet", action="store_true", help="only the answer on stdout; stderr only for problems"
    )
    run_cmd.add_argument(
        "--show-reasoning",
        action="store_true",
        default=None,
        help="stream the model's reasoning to stderr",
    )
    add_continue_options(run_cmd)
    add_verify_options(run_cmd)
    add_trace_option(run_cmd)
    run_cmd.add_argument(
        "--no-log", action="store_true", help="keep no trace of this run (nothing is written)"
    )
    add_mcp_options(run_cmd)
    add_server_options(run_cmd)
    add_model_options(run_cmd)
    run_cmd.set_defaults(handler=run_command)


def add_continue_options(parser: argparse.ArgumentParser) -> None:
    """`-c` and `--continue-run RUN_ID`: go on from a traced run's conversation."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-c",
        "--continue",
        dest="continue_run",
        action="store_const",
        const="last",
        help="continue the conversation of the last run",
    )
    group.add_argument(
        "--continue-run",
        dest="continue_run",
        metavar="RUN_ID",
        help="continue the conversation of this run (an id, its start or end, or last)",
    )


def continued_conversation(agent: Agent, given: str | None) -> tuple[list[Message], dict[str, str]]:
    """The history a `--continue` names and the labels that file the new run under the same
    conversation; none of either without `--continue`.

    Raises:
        UserError: the run is unknown or ended without an answer, or there is no trace.
    """
    if given is None:
        return [], {}
    if agent.store is None:
        raise UserError(
            "--continue reads the conversation from the trace: drop --no-log.", field="continue_run"
        )
    run_id = resolve_run_id(agent.store, given)
    history = conversation_of(agent.store, run_id)
    labels = {CONVERSATION_LABEL: conversation_start(agent.store, run_id), CONTINUES_LABEL: run_id}
    return history, labels


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """`--model` and the llama.cpp settings, shared by `verity run` and `verity serve`."""
    parser.add_argument(
        "--model",
        metavar="MODEL",
        help="a GGUF file, embedded, demo-1.5b, ollama:NAME[:TAG] or hf:ORG/REPO/FILE (default: "
        "$VERITY_MODEL, the config file, else embedded); `verity models` lists them",
    )
    model = parser.add_argument_group("model settings")
    model.add_argument("--n-ctx", type=int, help="context window in tokens (8192)")
    model.add_argument("--threads", type=int, help="CPU threads (llama.cpp's choice)")
    model.add_argument("--n-gpu-layers", type=int, help="layers to offload to the GPU, -1 all (0)")
    model.add_argument("--flash-attn", action="store_true", default=None, help="flash attention")
    model.add_argument("--temperature", type=float, help="sampling temperature, 0 = greedy")
    model.add_argument("--seed", type=int, help="sampling seed (0)")
    model.add_argument("--max-tokens", type=int, help="largest completion per model call (1024)")
    model.add_argument(
        "--max-thinking-tokens",
        type=int,
        metavar="N",
        help="close a <think> block after N tokens and ask for the action (no cap)",
    )
    model.add_argument(
        "--prefix-cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the evaluated system prompt and tools on disk, so the next run with the "
        "same ones starts at once (on; docs/warm-starts.md)",
    )
    model.add_argument(
        "--prefix-cache-dir", type=Path, metavar="DIR", help="where it lives (user cache dir)"
    )
    model.add_argument(
        "--prefix-cache-max-bytes", type=int, metavar="BYTES", help="its size bound (2 GiB)"
    )


def add_verify_options(parser: argparse.ArgumentParser) -> None:
    """`--verify` and its companions, shared by `verity run` and `verity serve`."""
    group = parser.add_argument_group("verification")
    group.add_argument(
        "--verify",
        metavar="SPEC",
        help=f"check the answer before accepting it: {VERIFY_SPECS} (none, or $VERITY_VERIFY)",
    )
    group.add_argument(
        "--verifier-model",
        type=Path,
        metavar="PATH",
        help="GGUF model that self-check judges with, same model settings (default: the run's)",
    )
    group.add_argument(
        "--verify-rounds", type=int, help="answers checked before the best is kept unverified (3)"
    )
    group.add_argument(
        "--check-tool-arguments",
        action="store_true",
        help="record a check of each step's tool-call arguments",
    )
    group.add_argument(
        "--no-answer-checks",
        dest="check_answers",
        action="store_false",
        help="accept any non-empty answer: no check for non-answers and made-up facts, and no "
        f"exit {EXIT_TOOLS_UNAVAILABLE} for MCP servers that did not start",
    )
    group.add_argument(
        "--require-verified",
        action="store_true",
        help=f"print the answer only if verified (else stdout stays empty; exit {EXIT_UNVERIFIED})",
    )


def _model_settings(args: argparse.Namespace) -> ModelSettings:
    """The model settings given as options; those not given stay unset (bundled models decode
    greedily unless --temperature is given)."""
    chosen = {field: getattr(args, dest) for field, dest in _MODEL_OPTIONS.items()}
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
    elif error["type"] == "less_than_equal":
        requirement = f"must be at most {error['ctx']['le']} (llama.cpp takes a 32-bit number)"
    else:
        requirement = error["msg"].replace("Input should be", "must be")
    return UserError(f"{option} {requirement}, not {error['input']}.", field=field)


def run_command(args: argparse.Namespace) -> int:
    """`verity run`: run the task, print the answer; the exit code says how it ended."""
    args.task = _task(args.task)
    if args.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, not {args.max_steps}.", field="max_steps")
    if args.require_verified and args.verify.strip().lower() == "none":
        raise UserError(
            "--require-verified needs a verifier: add --verify self (or another "
            f"spec: {VERIFY_SPECS}).",
            field="require_verified",
        )
    if args.verify_rounds < 1:
        raise UserError(
            f"--verify-rounds must be at least 1, not {args.verify_rounds}.", field="verify_rounds"
        )
    check_server_options(args)
    prices = load_prices() if args.json else {}  # a broken price file fails before the run
    printer = _printer(args)
    try:
        agent = build_agent(args, printer)

        async def run_and_close() -> RunResult:
            async with agent:  # leaving it frees the model after the generation stopped
                history, labels = continued_conversation(agent, args.continue_run)
                return await agent.run(args.task, history=history, labels=labels)

        result = run_interruptibly(run_and_close)
        recorder = agent.recorder
        return _print_result(result, args=args, printer=printer, recorder=recorder, prices=prices)
    except RunLimitExceeded as exc:
        if exc.partial_answer:
            print(
                f"verity: the cut-off text of the last step:\n{exc.partial_answer}", file=sys.stderr
            )
        raise


def _task(given: str | None) -> str:
    """The task from the command line, or from stdin for `-` or none."""
    if given is None or given == "-":
        if sys.stdin is None or (given is None and sys.stdin.isatty()):
            raise UserError(
                'Say what the agent should do: verity run "What is 1234 * 5678 + 17?", or pipe '
                "the task in: echo TASK | verity run",
                field="task",
            )
        stdin = getattr(sys.stdin, "buffer", None)
        given = stdin.read().decode("utf-8", "replace") if stdin else sys.stdin.read()
    # bytes that are not UTF-8 (argv decoded with surrogateescape) become U+FFFD
    given = os.fsencode(given).decode("utf-8", "replace")
    if not given.strip():
        raise UserError(
            "The task is empty. Say what the agent should do, e.g. "
            'verity run "What is 1234 * 5678 + 17?"',
            field="task",
        )
    return given


def _printer(args: argparse.Namespace) -> ProgressPrinter | None:
    """Progress on stderr; the answer streams to the terminal: stdout if it is one (and not
    --json), else stderr if that is. Nothing with --quiet."""
    if args.quiet:
        return None
    answer_stream = None
    # an answer that must be verified first never streams to stdout before its verdict
    if sys.stdout.isatty() and not args.json and not args.require_verified:
        answer_stream = sys.stdout
    elif sys.stderr.isatty():
        answer_stream = sys.stderr
    return ProgressPrinter(answer_stream=answer_stream, show_reasoning=bool(args.show_reasoning))


def agent_config(args: argparse.Namespace) -> AgentConfig:
    """The `AgentConfig` the options of `verity run` (and `verity serve`) describe."""
    return AgentConfig(
        model=args.base_url or args.model or EMBEDDED_REF,
        api_model=args.api_model,
        api_key=os.environ.get("VERITY_API_KEY") or None,
        stream=args.stream,
        model_settings=_model_settings(args),
        verifier_model=args.verifier_model,
        mcp_sampling=args.mcp_sampling,
        allow=tuple(args.allow),
        verify=args.verify,
        settings=RunSettings(
            max_steps=args.max_steps,
            max_verify_rounds=args.verify_rounds,
            system_prompt=args.system,
            check_tool_arguments=args.check_tool_arguments,
            check_answers=args.check_answers,
        ),
        trace=not getattr(args, "no_log", False),
        trace_db=args.trace_db,
    )


def build_agent(args: argparse.Namespace, printer: ProgressPrinter | None = None) -> Agent:
    """The agent the options describe, with the MCP servers of the config file and approvals
    asked on the terminal; the printer, if any, shows its progress.

    Raises:
        UserError: an option is invalid, a model is missing or not a GGUF, or the MCP config
            file is broken.
    """
    streams = printer is not None and (args.base_url is None or args.stream)
    mcp = configured_servers(args)
    return Agent(
        agent_config(args),
        mcp=mcp,
        approvals=terminal_approvals(args, mcp),
        hooks=[printer] if printer is not None else [],
        on_delta=printer.on_delta if printer is not None and streams else None,
        on_load=printer.loading if printer is not None else None,
        on_assembly=printer.assembly_progress() if printer is not None else None,
    )


def _print_result(
    result: RunResult,
    *,
    args: argparse.Namespace,
    printer: ProgressPrinter | None,
    recorder: TraceRecorder | None,
    prices: Mapping[str, Price],
) -> int:
    """Print the answer (unless it was refused, or must be verified and is not); the exit code
    says how it went: tools unavailable (8), rejected (7), unverified (5), incomplete trace (6)."""
    failed = result.status in ("rejected", "tools_unavailable")
    withheld = failed or (args.require_verified and not result.verified)
    unverified = result.verified is False or withheld
    if failed or unverified:
        print(
            f"verity: {_headline(result)}: {_reason(result)} (verity show {result.run_id})",
            file=sys.stderr,
        )
    if args.json and (failed or not withheld):
        payload = {
            "run_id": result.run_id,
            "status": result.status,
            "reason": result.reason,
            "answer": result.answer,
            "boxed_answer": result.boxed_answer,
            "verified": result.verified,
            "steps": max((s.step for s in result.steps), default=0),
            "usage": result.usage.model_dump(),
            "cost_usd": priced_usage(result.usage, prices),
            "trace_db": str(recorder.store.path) if recorder else None,
        }
        print(json.dumps(payload))
    elif not withheld:
        # a task that asks for \boxed{} wants the value; the full answer stays in the trace
        answer = result.answer if result.boxed_answer is None else result.boxed_answer
        streamed = printer is not None and printer.answer_stream is sys.stdout
        if not (streamed and printer and printer.streamed_answer.strip() == answer.strip()):
            print(printable(answer))  # unless it already streamed there, as it was generated
    sys.stdout.flush()
    traced = 0
    if recorder is not None:
        if not args.quiet and not args.json:
            print(f"verity: run {result.run_id} stored in {recorder.store.path}", file=sys.stderr)
        traced = trace_outcome(recorder, result.run_id)
    if result.status == "tools_unavailable":
        return EXIT_TOOLS_UNAVAILABLE
    if result.status == "rejected":
        return EXIT_REJECTED
    return EXIT_UNVERIFIED if unverified else traced


def _headline(result: RunResult) -> str:
    if result.status == "tools_unavailable":
        return "tools unavailable, the answer may be made up"
    if result.status == "rejected":
        return "answer NOT accepted"
    return "answer not verified"


def _reason(result: RunResult) -> str:
    """The run's own reason, else why no verifier confirmed the answer (--require-verified)."""
    return printable(" ".join((result.reason or _why_unverified(result)).split()))


def _why_unverified(result: RunResult) -> str:
    """Why the answer is not verified when the run's status does not say (no verifier ran)."""
    if not any(isinstance(step, VerifyStep) and step.verdict.checked for step in result.steps):
        return "not checked (no verifier ran)"
    return "no verifier confirmed it"
