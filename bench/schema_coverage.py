"""Which JSON Schemas get a working tool-call grammar: Verity's ladder vs llama-cpp-python's GBNF.

    python bench/schema_coverage.py --data DIR [--json] [--workers N] [--timeout S]
                                    [--model GGUF] [--no-baseline] [--limit N]

DIR holds plain schema files (`*.json`, one schema each) and/or files in the JSON Schema Test
Suite layout (`[{"schema": ..., "tests": [{"data": ..., "valid": bool}]}]`), in any folders.
Each schema is compiled for the model's vocabulary in a child process (a small pool, one schema
at a time), so a native crash or a hang is counted, never fatal:
- verity     `verity.models.grammar.schema_grammar` (exact / relaxed / any JSON) compiled by
             llguidance; "unavailable" when jsonschema itself cannot use the schema
- baseline   llama-cpp-python's `json_schema_to_gbnf` + llama.cpp's grammar parser (what Verity
             used before): "unavailable" when either refuses the schema
Where tests exist: the share of valid instances an exact grammar accepts token by token, and the
share of invalid instances rejected (Verity: by post-validation with jsonschema, as in a run;
baseline: by its grammar, the only check it has).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

ENGINES = ("verity", "baseline")
LEVELS = ("exact", "relaxed", "any", "unavailable", "crash")


@dataclass
class Item:
    """One schema to compile, with the suite's tests when it has them."""

    name: str
    schema: Any
    tests: list[dict[str, Any]] = field(default_factory=list)


def load_items(data: Path) -> tuple[list[Item], list[str]]:
    """Every schema under `data`; and the files that could not be read as JSON."""
    items: list[Item] = []
    unreadable: list[str] = []
    for path in sorted(data.rglob("*.json")):
        name = str(path.relative_to(data))
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            unreadable.append(name)
            continue
        if _is_suite(content):
            for index, group in enumerate(content):
                items.append(Item(f"{name}#{index}", group["schema"], list(group["tests"])))
        else:
            items.append(Item(name, content))
    return items, unreadable


def _is_suite(content: Any) -> bool:
    return (
        isinstance(content, list)
        and bool(content)
        and all(
            isinstance(g, dict) and "schema" in g and isinstance(g.get("tests"), list)
            for g in content
        )
    )


# ---- the child process: compile one schema at a time, answer one JSON line each ----


def worker(engine: str, model: Path) -> None:
    """Read `{"schema", "tests"}` lines on stdin; write one result line per schema."""
    import llama_cpp

    llm = llama_cpp.Llama(str(model), vocab_only=True, verbose=False)
    compile_one = _verity_compiler(llm) if engine == "verity" else _baseline_compiler(llm)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        result = compile_one(request["schema"], request["tests"])
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def _tokens(llm: Any, data: Any) -> list[int]:
    text = json.dumps(data, ensure_ascii=False)
    return list(llm.tokenize(text.encode(), add_bos=False, special=False))


def _verity_compiler(llm: Any) -> Any:
    from verity.models.grammar import Constraint, GrammarError, grammar_tokenizer, schema_grammar
    from verity.tools.schemas import schema_problem, validator_for

    tokenizer = grammar_tokenizer(llm._model.vocab)
    end = llm.token_eos()

    def accepts(lark: str, tokens: list[int]) -> bool:
        constraint = Constraint(tokenizer, lark)
        return all(constraint.allows(t) and constraint.accept(t) for t in tokens) and (
            constraint.allows(end)
        )

    def compile_one(schema: Any, tests: list[dict[str, Any]]) -> dict[str, Any]:
        problem = schema_problem(schema)
        if problem is not None:
            return {"level": "unavailable", "reason": problem}
        started = time.perf_counter()
        grammar = schema_grammar(schema, root_object=False)
        lark = f"start: {grammar.json_rule()}"
        try:
            Constraint(tokenizer, lark)
        except GrammarError as exc:  # the ladder checked it without the vocabulary
            return {"level": "unavailable", "reason": f"llguidance: {exc}"}
        result: dict[str, Any] = {
            "level": grammar.level,
            "compile_ms": (time.perf_counter() - started) * 1000,
            "dropped": list(grammar.dropped),
            "reason": grammar.reason,
        }
        valid = [t["data"] for t in tests if t.get("valid")]
        invalid = [t["data"] for t in tests if not t.get("valid")]
        if grammar.level == "exact" and valid:
            result["valid"] = [len(valid), sum(accepts(lark, _tokens(llm, d)) for d in valid)]
        if invalid:
            validator = validator_for(schema)
            result["invalid"] = [len(invalid), sum(not validator.is_valid(d) for d in invalid)]
        return result

    return compile_one


def _baseline_compiler(llm: Any) -> Any:
    import ctypes
    import math

    import llama_cpp
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    vocab = llm._model.vocab
    single = (llama_cpp.llama_token_data * 1)()
    end = llm.token_eos()

    def allowed(grammar: Any, token: int) -> bool:
        single[0].id, single[0].logit, single[0].p = token, 0.0, 0.0
        candidates = llama_cpp.llama_token_data_array(
            data=single, size=1, selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(candidates))
        return not math.isinf(single[0].logit)

    def accepts(gbnf: bytes, tokens: list[int]) -> bool:
        grammar = llama_cpp.llama_sampler_init_grammar(vocab, gbnf, b"root")
        try:
            for token in tokens:
                if not allowed(grammar, token):
                    return False
                llama_cpp.llama_sampler_accept(grammar, token)
            return allowed(grammar, end)
        finally:
            llama_cpp.llama_sampler_free(grammar)

    def compile_one(schema: Any, tests: list[dict[str, Any]]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            gbnf = json_schema_to_gbnf(json.dumps(schema)).encode()
        except Exception as exc:  # noqa: BLE001 - the converter raises all kinds
            return {"level": "unavailable", "reason": f"converter: {type(exc).__name__}: {exc}"}
        grammar = llama_cpp.llama_sampler_init_grammar(vocab, gbnf, b"root")
        if not grammar:
            return {"level": "unavailable", "reason": "llama.cpp refused the grammar"}
        llama_cpp.llama_sampler_free(grammar)
        result: dict[str, Any] = {
            "level": "exact",
            "compile_ms": (time.perf_counter() - started) * 1000,
        }
        valid = [t["data"] for t in tests if t.get("valid")]
        invalid = [t["data"] for t in tests if not t.get("valid")]
        if valid:
            result["valid"] = [len(valid), sum(accepts(gbnf, _tokens(llm, d)) for d in valid)]
        if invalid:
            rejected = sum(not accepts(gbnf, _tokens(llm, d)) for d in invalid)
            result["invalid"] = [len(invalid), rejected]
        return result

    return compile_one


# ---- the parent: a pool of workers; a worker that dies or hangs is a crash, then replaced ----


class _Worker:
    def __init__(self, engine: str, model: Path) -> None:
        self.engine, self.model = engine, model
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", engine, "--model", str(model)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        self.item: int | None = None
        self.started = 0.0
        self.ready = False

    def send(self, index: int, item: Item) -> None:
        assert self.process.stdin is not None
        self.item, self.started = index, time.monotonic()
        line = json.dumps({"schema": item.schema, "tests": item.tests}, ensure_ascii=False)
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def run_engine(
    engine: str, items: list[Item], model: Path, *, workers: int, timeout: float
) -> list[dict[str, Any]]:
    """One result per item, in order."""
    results: list[dict[str, Any] | None] = [None] * len(items)
    pending = list(range(len(items)))[::-1]
    pool = [_Worker(engine, model) for _ in range(max(1, min(workers, len(items))))]
    try:
        while pending or any(w.item is not None for w in pool):
            for worker_ in pool:
                if worker_.ready and worker_.item is None and pending:
                    index = pending.pop()
                    worker_.send(index, items[index])
            streams = {w.process.stdout: w for w in pool if w.process.stdout is not None}
            readable, _, _ = select.select(list(streams), [], [], 1.0)
            for stream in readable:
                _read_one(streams[stream], results)
            for position, worker_ in enumerate(pool):
                died = worker_.process.poll() is not None
                hung = worker_.item is not None and time.monotonic() - worker_.started > timeout
                if died or hung:
                    if worker_.item is not None:
                        why = "hang" if hung and not died else f"exit {worker_.process.returncode}"
                        results[worker_.item] = {"level": "crash", "reason": why}
                    elif not worker_.ready:
                        raise RuntimeError(f"the {engine} worker could not start")
                    worker_.kill()
                    pool[position] = _Worker(engine, model)
    finally:
        for worker_ in pool:
            worker_.kill()
    return [r if r is not None else {"level": "crash", "reason": "lost"} for r in results]


def _read_one(worker_: _Worker, results: list[dict[str, Any] | None]) -> None:
    assert worker_.process.stdout is not None
    line = worker_.process.stdout.readline()
    if not line:
        return  # EOF: the poll below sees the exit
    if line.strip() == "ready":
        worker_.ready = True
    elif worker_.item is not None:
        results[worker_.item] = json.loads(line)
        worker_.item = None


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, compile-time percentiles and test shares for one engine."""
    counts = {level: sum(r["level"] == level for r in results) for level in LEVELS}
    times = sorted(r["compile_ms"] for r in results if "compile_ms" in r)
    valid = [sum(r["valid"][i] for r in results if "valid" in r) for i in (0, 1)]
    invalid = [sum(r["invalid"][i] for r in results if "invalid" in r) for i in (0, 1)]
    return {
        "schemas": len(results),
        "exact": counts["exact"],
        "relaxed": counts["relaxed"] + counts["any"],
        "relaxed_to_any": counts["any"],
        "unavailable": counts["unavailable"],
        "crashes": counts["crash"],
        "compile_ms_p50": statistics.median(times) if times else None,
        "compile_ms_p99": times[min(len(times) - 1, int(len(times) * 0.99))] if times else None,
        "valid_tests": valid[0],
        "valid_accepted": valid[1] / valid[0] if valid[0] else None,
        "invalid_tests": invalid[0],
        "invalid_rejected": invalid[1] / invalid[0] if invalid[0] else None,
    }


def _cell(value: Any, share: bool = False) -> str:
    if value is None:
        return "-"
    if share:
        return f"{value:.1%}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    rows = [
        ("schemas", "schemas", False),
        ("exact", "exact grammar", False),
        ("relaxed", "relaxed grammar (incl. any JSON)", False),
        ("relaxed_to_any", "  of which any JSON", False),
        ("unavailable", "unavailable (with a reason)", False),
        ("crashes", "crashes", False),
        ("compile_ms_p50", "compile ms p50", False),
        ("compile_ms_p99", "compile ms p99", False),
        ("valid_accepted", "valid instances accepted (exact)", True),
        ("invalid_rejected", "invalid instances rejected", True),
    ]
    engines = list(summaries)
    print(f"{'':<34}" + "".join(f"{e:>12}" for e in engines))
    for key, label, share in rows:
        print(f"{label:<34}" + "".join(f"{_cell(summaries[e][key], share):>12}" for e in engines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="directory of schemas (required)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--workers", type=int, default=2, help="child processes per engine (2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per schema (60)")
    parser.add_argument("--model", type=Path, help="GGUF whose vocabulary is used")
    parser.add_argument("--no-baseline", action="store_true", help="skip the GBNF baseline")
    parser.add_argument("--limit", type=int, help="first N schemas only")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.model)
        return
    if args.data is None or not args.data.is_dir():
        parser.error(f"--data must be a directory of schemas (got {args.data})")
    from verity import embedded_model_path

    model = args.model or embedded_model_path()
    items, unreadable = load_items(args.data)
    items = items[: args.limit] if args.limit else items
    engines = ENGINES[:1] if args.no_baseline else ENGINES
    started = time.monotonic()
    results = {
        e: run_engine(e, items, model, workers=args.workers, timeout=args.timeout) for e in engines
    }
    summaries = {e: summarise(r) for e, r in results.items()}
    if args.json:
        report = dict(summaries["verity"])
        if "baseline" in summaries:
            report["baseline"] = summaries["baseline"]
        report["unreadable_files"] = unreadable
        report["not_exact"] = {
            item.name: {k: v for k, v in result.items() if k in ("level", "reason", "dropped")}
            for item, result in zip(items, results["verity"], strict=True)
            if result["level"] != "exact"
        }
        print(json.dumps(report))
        return
    print_table(summaries)
    print(
        f"\n{len(items)} schemas from {args.data} in {time.monotonic() - started:.0f} s"
        + (f"; {len(unreadable)} unreadable files skipped" if unreadable else "")
    )


if __name__ == "__main__":
    main()
