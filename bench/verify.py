"""GSM8K with the calculator: verification as selective prediction, against no verifier.

    python bench/verify.py [--model GGUF|demo-1.5b] [--start N] [--limit N]
                           [--verifiers self] [--rounds 2] [--data FILE_OR_DIR] [--out FILE]
                           [--threads N] [--no-cache] [--json]

The agent is the model (greedy) with the calculator tool; verifiers judge on a llama.cpp context
of their own that shares the weights. Each problem runs without a verifier (the baseline; cached
per model, problem and agent code in the user cache, `--no-cache` to rerun) and once per
verifier. Per verifier it reports:
- precision: of the answers marked verified, the share that is correct;
- coverage: the share of problems whose answer is marked verified;
- accuracy of the final answer (verified or not), and the change against the baseline;
- flips: problems the baseline got right and the verified run got wrong (and fixes, the reverse);
- tokens evaluated (prompt tokens not served from the KV cache, plus generated ones) per
  problem, the verifier's own calls included, and their ratio to the baseline's; each run
  starts from empty KV caches.
Answers are compared with `verity.verify.same_answer` (numbers as numbers, math-verify beyond).
Data: ../shared/bench/gsm8k (GSM8K test, first 300 problems). Problems 0-199 are the design
split; 200-299 are held out (`--start 200`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import platformdirs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verity import (
    LlamaCppModel,
    ModelError,
    ModelSettings,
    RunLimitExceeded,
    RunSettings,
    Usage,
    Verdict,
    iter_run,
)
from verity.models.refs import resolve_model_ref
from verity.solver import seeded_solver
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.verify import build_verifier, normalise_answer, same_answer

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "gsm8k"
INSTRUCTION = "\n\nUse the calculator for the arithmetic. End with: The answer is <number>."
CONSENSUS_TEMPERATURE = 0.7
JUDGE_CONTEXT = 4096
CACHE = Path(platformdirs.user_cache_dir("verity")) / "bench" / "verify-baseline.jsonl"


@dataclass
class Problem:
    index: int
    question: str
    gold: str


@dataclass
class Outcome:
    index: int
    answer: str = ""
    correct: bool = False
    verified: bool | None = None
    first_answer: str = ""
    first_verdict: str = ""
    """The first verdict: accepted or not, and its first failed finding."""
    rounds: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    verifier_tokens: int = 0
    """Evaluated tokens of the verifier's own calls (part of `evaluated_tokens`)."""
    seconds: float = 0.0


@dataclass
class Summary:
    verifier: str
    problems: int
    precision: float | None
    verified: str
    coverage: float
    accuracy: float
    delta_points: float
    flips: int
    fixes: int
    evaluated_per_problem: float
    token_ratio: float
    seconds_per_problem: float
    outcomes: list[Outcome] = field(repr=False)


def load_problems(path: Path, start: int, limit: int | None) -> list[Problem]:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        sys.exit(f"bench/verify.py: no GSM8K data at {path} (see ../shared/bench/README.md)")
    rows = [
        json.loads(line)
        for file in files
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    problems = [
        Problem(index, row["question"], normalise_answer(row["answer"].rsplit("####", 1)[-1]))
        for index, row in enumerate(rows)
    ]
    return problems[start : start + limit if limit else None]


async def solve_one(
    problem: Problem,
    spec: str,
    model: LlamaCppModel,
    judge: LlamaCppModel,
    *,
    max_steps: int,
    rounds: int,
) -> Outcome:
    toolset = FunctionToolset([calculator])
    settings = RunSettings(max_steps=max_steps, max_verify_rounds=rounds)
    solve = seeded_solver(
        lambda seed: judge.with_sampling(seed=seed, temperature=CONSENSUS_TEMPERATURE),
        toolsets=[toolset],
        settings=RunSettings(max_steps=max_steps),
    )
    verifier = build_verifier(spec, model=judge, solve=solve, toolsets=[toolset])
    outcome = Outcome(index=problem.index)
    usage, verifier_usage = Usage(), Usage()
    # every run starts from empty KV caches: an earlier run of the same task must not make this
    # one's prompt free (the baseline and the verified run pay for their prompts alike)
    model.llama.reset()
    judge.llama.reset()
    started = time.perf_counter()
    async with toolset:
        try:
            async for step in iter_run(
                problem.question + INSTRUCTION,
                model=model,
                toolsets=[toolset],
                verifier=verifier,
                settings=settings,
            ):
                if step.kind == "model":
                    usage += step.response.usage
                    if not step.response.tool_calls and not outcome.first_answer:
                        outcome.first_answer = step.response.content
                elif step.kind == "verify":
                    if step.verdict.checked and not outcome.first_verdict:
                        outcome.first_verdict = _described(step.verdict)
                    usage += step.verdict.usage
                    verifier_usage += step.verdict.usage
                    outcome.rounds += step.verdict.checked
                elif step.kind == "final":
                    outcome.answer, outcome.verified = step.answer, step.verified
        except (RunLimitExceeded, ModelError) as exc:
            print(f"  run ended without an answer: {exc}", file=sys.stderr)
    outcome.seconds = time.perf_counter() - started
    outcome.correct = bool(outcome.answer) and same_answer(outcome.answer, problem.gold)
    outcome.evaluated_tokens = usage.prompt_tokens_evaluated + usage.completion_tokens
    outcome.generated_tokens = usage.completion_tokens
    outcome.verifier_tokens = (
        verifier_usage.prompt_tokens_evaluated + verifier_usage.completion_tokens
    )
    return outcome


def _described(verdict: Verdict) -> str:
    state = "confirmed" if verdict.ok and verdict.conclusive else "ok" if verdict.ok else "rejected"
    failed = next((f for f in verdict.findings if not f.ok), None)
    values = ",".join(s.answer or "-" for s in verdict.samples)
    return f"{state} [{values}]" + (f" {failed.claim}: {failed.evidence[:80]}" if failed else "")


class BaselineCache:
    """Baseline outcomes by model file, problem and settings: the greedy run is deterministic."""

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self.entries: dict[str, dict[str, Any]] = {}
        if enabled and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.entries[row["key"]] = row["outcome"]

    @staticmethod
    def key(model: Path, problem: Problem, max_steps: int) -> str:
        stat = model.stat()
        text = f"{model.name}|{stat.st_size}|{max_steps}|{problem.question}{INSTRUCTION}"
        return hashlib.sha256((text + _agent_code_digest()).encode()).hexdigest()

    def get(self, key: str) -> Outcome | None:
        row = self.entries.get(key) if self.enabled else None
        return Outcome(**row) if row else None

    def put(self, key: str, outcome: Outcome) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"key": key, "outcome": asdict(outcome)}) + "\n")


def _agent_code_digest() -> str:
    """The code a baseline run depends on: a change to it reruns the baseline."""
    root = Path(__file__).resolve().parent.parent / "agent"
    files = sorted(
        [
            *root.glob("models/**/*.py"),
            root / "loop.py",
            root / "_dispatch.py",
            root / "prompts" / "system.md",
            root.parent / "tools" / "toolset.py",
            root.parent / "tools" / "builtin" / "calculator.py",
        ]
    )
    digest = hashlib.sha256()
    for file in files:
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()


def summarise(spec: str, outcomes: list[Outcome], baseline: list[Outcome]) -> Summary:
    n = len(outcomes)
    verified = [o for o in outcomes if o.verified]
    base_tokens = sum(o.evaluated_tokens for o in baseline) or 1
    accuracy = sum(o.correct for o in outcomes) / n
    pairs = list(zip(outcomes, baseline, strict=True))
    return Summary(
        verifier=spec,
        problems=n,
        precision=sum(o.correct for o in verified) / len(verified) if verified else None,
        verified=f"{sum(o.correct for o in verified)}/{len(verified)}",
        coverage=len(verified) / n,
        accuracy=accuracy,
        delta_points=100 * (accuracy - sum(b.correct for b in baseline) / n),
        flips=sum(b.correct and not o.correct for o, b in pairs),
        fixes=sum(o.correct and not b.correct for o, b in pairs),
        evaluated_per_problem=sum(o.evaluated_tokens for o in outcomes) / n,
        token_ratio=sum(o.evaluated_tokens for o in outcomes) / base_tokens,
        seconds_per_problem=sum(o.seconds for o in outcomes) / n,
        outcomes=outcomes,
    )


def print_table(summaries: list[Summary]) -> None:
    print(
        "| verifier | precision of verified (correct/verified) | coverage | accuracy | Δ points "
        "| flips right→wrong | fixes wrong→right | tokens/problem | tokens vs none | s/problem |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in summaries:
        precision = "-" if s.precision is None else f"{100 * s.precision:.0f}%"
        print(
            f"| {s.verifier} | {precision} ({s.verified}) | {100 * s.coverage:.0f}% "
            f"| {100 * s.accuracy:.1f}% | {s.delta_points:+.1f} | {s.flips} | {s.fixes} "
            f"| {s.evaluated_per_problem:.0f} | {s.token_ratio:.2f}x "
            f"| {s.seconds_per_problem:.0f} |"
        )


async def main(args: argparse.Namespace) -> None:
    problems = load_problems(args.data, args.start, args.limit)
    specs = [s.strip() for s in args.verifiers.split(",") if s.strip() and s.strip() != "none"]
    path = resolve_model_ref(args.model or "embedded").path
    settings = ModelSettings(temperature=0, n_ctx=8192, max_tokens=512, n_threads=args.threads)
    model = LlamaCppModel(path, settings)
    judge = model.with_own_context(n_ctx=JUDGE_CONTEXT)
    cache = BaselineCache(CACHE, enabled=not args.no_cache)
    results: dict[str, list[Outcome]] = {spec: [] for spec in ["none", *specs]}
    log = args.out.open("a", encoding="utf-8") if args.out else None
    try:
        for count, problem in enumerate(problems, 1):
            for spec in ["none", *specs]:
                key = BaselineCache.key(path, problem, args.max_steps)
                outcome = cache.get(key) if spec == "none" else None
                if outcome is None:
                    outcome = await solve_one(
                        problem, spec, model, judge, max_steps=args.max_steps, rounds=args.rounds
                    )
                    if spec == "none":
                        cache.put(key, outcome)
                results[spec].append(outcome)
                if log:
                    log.write(
                        json.dumps(
                            {
                                "spec": spec,
                                "model": path.name,
                                "gold": problem.gold,
                                **asdict(outcome),
                            }
                        )
                        + "\n"
                    )
                    log.flush()
                print(
                    f"[{count}/{len(problems)} #{problem.index}] {spec:<10} gold {problem.gold:<8} "
                    f"got {normalise_answer(outcome.answer) or '-':<10} "
                    f"{'ok ' if outcome.correct else 'BAD'} verified={outcome.verified} "
                    f"rounds={outcome.rounds} {outcome.evaluated_tokens} tok "
                    f"({outcome.verifier_tokens} verifier) {outcome.seconds:.0f}s "
                    f"{outcome.first_verdict[:120]}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        model.close()
        if log:
            log.close()
    summaries = [summarise(spec, results[spec], results["none"]) for spec in results]
    if args.json:
        print(json.dumps([asdict(s) for s in summaries], indent=2))
    else:
        print(
            f"{path.name}, GSM8K problems {args.start}-{args.start + len(problems) - 1}, "
            f"greedy, {args.rounds} verify rounds"
        )
        print_table(summaries)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--start", type=int, default=0, help="first problem (held out: 200)")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--verifiers", default="self", help="comma-separated --verify specs")
    parser.add_argument("--model", help="GGUF file, or demo-1.5b (default: the embedded 0.5B)")
    parser.add_argument("--rounds", type=int, default=2, help="answers verified per problem")
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-cache", action="store_true", help="rerun the baseline")
    parser.add_argument("--out", type=Path, help="append one JSON line per problem and verifier")
    parser.add_argument("--json", action="store_true")
    anyio.run(main, parser.parse_args())
