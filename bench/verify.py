"""GSM8K with the calculator: accuracy with verification off vs each verifier (issue 4).

    python bench/verify.py [--data FILE_OR_DIR] [--limit N] [--verifiers none,self,consensus:3]
                           [--model GGUF] [--max-steps 6] [--json]

The agent is the embedded model (greedy) with the calculator tool. Every problem runs once per
verifier, with the baseline (`none`) in the same run. Per verifier it reports:
- accuracy of the final answer (verified or not), and the change against the baseline;
- caught: first candidates that were wrong and that the verifier rejected;
- false alarms: first candidates that were right and that the verifier rejected;
- flips: problems the baseline got right and this verifier's run got wrong;
- generated and evaluated tokens and seconds per problem (verifier and consensus samples included).
Data: ../shared/bench/gsm8k (GSM8K test, first 300 problems); any JSONL with `question` and
`answer` (final number after `#### `) works through --data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verity import (
    LlamaCppModel,
    Message,
    ModelError,
    ModelResponse,
    ModelSettings,
    RunLimitExceeded,
    RunSettings,
    Usage,
    VerifyStep,
    embedded_model_path,
    iter_run,
)
from verity.models.base import ToolChoice
from verity.solver import seeded_solver
from verity.tools.base import ToolSpec
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.verify import build_verifier, normalise_answer

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "gsm8k"
INSTRUCTION = "\n\nUse the calculator for the arithmetic. End with: The answer is <number>."
CONSENSUS_TEMPERATURE = 0.7


@dataclass
class Problem:
    question: str
    gold: str


@dataclass
class Outcome:
    answer: str = ""
    correct: bool = False
    first_correct: bool = False
    rejected_first: bool = False
    verified: bool = False
    generated_tokens: int = 0
    evaluated_tokens: int = 0
    seconds: float = 0.0


@dataclass
class Summary:
    verifier: str
    problems: int
    accuracy: float
    delta_points: float
    caught: str
    false_alarms: str
    flips: int
    flip_rate: float
    verified: str
    """Answers marked verified, and how many of those are correct."""
    generated_per_problem: float
    evaluated_per_problem: float
    token_ratio: float
    seconds_per_problem: float
    outcomes: list[Outcome] = field(repr=False)


class CountingModel:
    """Passes calls through and adds up their usage (run, verifier and consensus samples)."""

    def __init__(self, inner: LlamaCppModel, usage: list[Usage]) -> None:
        self.inner = inner
        self.usage = usage

    @property
    def name(self) -> str:
        return self.inner.name

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        response = await self.inner.respond(messages, tools, tool_choice=tool_choice)
        self.usage.append(response.usage)
        return response


def load_problems(path: Path, limit: int | None) -> list[Problem]:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        sys.exit(f"bench/verify.py: no GSM8K data at {path} (see ../shared/bench/README.md)")
    problems = []
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                gold = row["answer"].rsplit("####", 1)[-1].strip()
                problems.append(Problem(row["question"], normalise_answer(gold)))
    return problems[:limit] if limit else problems


async def solve_one(problem: Problem, spec: str, model: LlamaCppModel, max_steps: int) -> Outcome:
    usage: list[Usage] = []
    counted = CountingModel(model, usage)
    toolset = FunctionToolset([calculator])
    settings = RunSettings(max_steps=max_steps, max_verify_rounds=2)
    solve = seeded_solver(
        lambda seed: CountingModel(
            model.with_sampling(seed=seed, temperature=CONSENSUS_TEMPERATURE), usage
        ),
        toolsets=[toolset],
        settings=RunSettings(max_steps=max_steps),
    )
    verifier = build_verifier(spec, model=counted, solve=solve, toolsets=[toolset])
    outcome = Outcome()
    started = time.perf_counter()
    first: bool | None = None
    async with toolset:
        try:
            async for step in iter_run(
                problem.question + INSTRUCTION,
                model=counted,
                toolsets=[toolset],
                verifier=verifier,
                settings=settings,
            ):
                if isinstance(step, VerifyStep) and first is None:
                    first = step.verdict.ok
                if step.kind == "final":
                    outcome.answer, outcome.verified = step.answer, step.verified
                if step.kind == "model" and first is None and not step.response.tool_calls:
                    outcome.first_correct = normalise_answer(step.response.content) == problem.gold
        except (RunLimitExceeded, ModelError) as exc:
            print(f"  run ended without an answer: {exc}", file=sys.stderr)
    outcome.seconds = time.perf_counter() - started
    outcome.rejected_first = first is False
    outcome.correct = bool(outcome.answer) and normalise_answer(outcome.answer) == problem.gold
    outcome.generated_tokens = sum(u.completion_tokens for u in usage)
    outcome.evaluated_tokens = sum(u.prompt_tokens_evaluated + u.completion_tokens for u in usage)
    return outcome


def summarise(spec: str, outcomes: list[Outcome], baseline: list[Outcome]) -> Summary:
    n = len(outcomes)
    accuracy = sum(o.correct for o in outcomes) / n
    base_accuracy = sum(o.correct for o in baseline) / n
    wrong_first = [o for o in outcomes if not o.first_correct]
    right_first = [o for o in outcomes if o.first_correct]
    verified = [o for o in outcomes if o.verified]
    flips = sum(b.correct and not o.correct for o, b in zip(outcomes, baseline, strict=True))
    base_tokens = sum(o.evaluated_tokens for o in baseline) or 1
    return Summary(
        verifier=spec,
        problems=n,
        accuracy=accuracy,
        delta_points=100 * (accuracy - base_accuracy),
        caught=f"{sum(o.rejected_first for o in wrong_first)}/{len(wrong_first)}",
        false_alarms=f"{sum(o.rejected_first for o in right_first)}/{len(right_first)}",
        flips=flips,
        flip_rate=flips / max(1, sum(b.correct for b in baseline)),
        verified=f"{sum(o.correct for o in verified)}/{len(verified)}",
        generated_per_problem=sum(o.generated_tokens for o in outcomes) / n,
        evaluated_per_problem=sum(o.evaluated_tokens for o in outcomes) / n,
        token_ratio=sum(o.evaluated_tokens for o in outcomes) / base_tokens,
        seconds_per_problem=sum(o.seconds for o in outcomes) / n,
        outcomes=outcomes,
    )


def print_table(summaries: list[Summary]) -> None:
    print(
        "| verifier | accuracy | Δ points | caught (wrong 1st rejected) | false alarms "
        "| correct→wrong flips | verified (correct/all) | gen tok/problem | tokens vs off "
        "| s/problem |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in summaries:
        print(
            f"| {s.verifier} | {100 * s.accuracy:.1f}% | {s.delta_points:+.1f} | {s.caught} "
            f"| {s.false_alarms} | {s.flips} ({100 * s.flip_rate:.0f}%) | {s.verified} "
            f"| {s.generated_per_problem:.0f} | {s.token_ratio:.2f}x "
            f"| {s.seconds_per_problem:.1f} |"
        )


async def main(args: argparse.Namespace) -> None:
    problems = load_problems(args.data, args.limit)
    specs = [s.strip() for s in args.verifiers.split(",") if s.strip()]
    if "none" not in specs:
        specs.insert(0, "none")
    settings = ModelSettings(temperature=0, n_ctx=8192, max_tokens=512, n_threads=args.threads)
    model = LlamaCppModel(args.model or embedded_model_path(), settings)
    results: dict[str, list[Outcome]] = {spec: [] for spec in specs}
    try:
        for index, problem in enumerate(problems):
            for spec in specs:
                outcome = await solve_one(problem, spec, model, args.max_steps)
                results[spec].append(outcome)
                print(
                    f"[{index + 1}/{len(problems)}] {spec:<14} gold {problem.gold:<8} "
                    f"got {normalise_answer(outcome.answer) or '-':<10} "
                    f"{'ok ' if outcome.correct else 'BAD'} "
                    f"rejected-first={outcome.rejected_first} verified={outcome.verified} "
                    f"{outcome.evaluated_tokens} tok {outcome.seconds:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        model.close()
    summaries = [summarise(spec, results[spec], results["none"]) for spec in specs]
    if args.json:
        payload: list[dict[str, Any]] = [asdict(s) for s in summaries]
        print(json.dumps(payload, indent=2))
    else:
        print_table(summaries)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--verifiers", default="none,self,consensus:3")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", action="store_true")
    anyio.run(main, parser.parse_args())
