"""Why a BFCL answer is wrong, and where one system loses to another case by case.

    python bench/bfcl_losses.py [--system verity] [--against free] [--show] [sample options]

Reads the per-case outputs bench/bfcl.py stored (it generates nothing: run bfcl.py first) and
sorts every wrong answer into one kind:
- text where a call was meant: no call at all
- call where text was meant: any call on an irrelevance case
- call count: more or fewer calls than expected
- wrong function: a call to another offered function
- missing argument: a required parameter left out
- extra argument: a parameter the answer does not list
- optional parameter: an optional parameter given a value the answer does not allow (often a
  default written out, or a value guessed)
- type or format: the right value in another type or spelling (`"5"` for 5, `"NYC"` vs `"nyc"`)
- wrong value: anything else
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bfcl import BASELINE, add_selection_arguments, run_system, select_cases
from bench.bfcl_cache import file_sha256
from bench.bfcl_scoring import Case, Outcome, _same, is_correct
from verity import embedded_model_path

KINDS = [
    "text where a call was meant",
    "call where text was meant",
    "call count",
    "wrong function",
    "missing argument",
    "extra argument",
    "optional parameter",
    "type or format",
    "wrong value",
]


def classify(case: Case, outcome: Outcome) -> str | None:
    """The kind of error in `outcome` (None when it is right)."""
    if is_correct(case, outcome):
        return None
    if case.category == "irrelevance":
        return "call where text was meant"
    if not outcome.calls:
        return "text where a call was meant"
    if len(outcome.calls) != len(case.expected):
        return "call count"
    best = min(
        (
            [
                _call_error(call, expected)
                for call, expected in zip(order, case.expected, strict=True)
            ]
            for order in itertools.permutations(outcome.calls)
        ),
        key=lambda errors: [KINDS.index(e) if e else len(KINDS) for e in errors],
    )
    return next((error for error in best if error), "wrong value")


def _call_error(
    call: tuple[str, dict[str, Any]], expected: dict[str, dict[str, list[Any]]]
) -> str | None:
    name, arguments = call
    ((expected_name, params),) = expected.items()
    if name != expected_name:
        return "wrong function"
    if any(key not in arguments for key, allowed in params.items() if "" not in allowed):
        return "missing argument"
    if any(key not in params for key in arguments):
        return "extra argument"
    for key, value in arguments.items():
        allowed = params[key]
        if any(_same(value, a) for a in allowed):
            continue
        if any(_loosely_same(value, a) for a in allowed if a != ""):
            return "type or format"
        return "optional parameter" if "" in allowed else "wrong value"
    return None


def _loosely_same(value: Any, allowed: Any) -> bool:
    """Equal once types and spelling are ignored: numbers in strings, case, spaces, quotes."""
    return _normal(value) == _normal(allowed)


def _normal(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(float(value))
    if isinstance(value, str):
        stripped = value.strip().strip("'\"").lower().replace(" ", "")
        try:
            return repr(float(stripped))
        except ValueError:
            return stripped
    if isinstance(value, list | tuple):
        return "[" + ",".join(_normal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_normal(v)}" for k, v in sorted(value.items())) + "}"
    return json.dumps(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_selection_arguments(parser)
    parser.add_argument("--system", default="verity")
    parser.add_argument("--against", default=BASELINE)
    parser.add_argument("--show", action="store_true", help="print both outputs of each loss")
    args = parser.parse_args()
    cases = select_cases(args)
    model_path = args.model or embedded_model_path()
    sha = file_sha256(model_path)
    ours = run_system(args.system, cases, model_path, sha, args.cache, generate=False)
    theirs = run_system(args.against, cases, model_path, sha, args.cache, generate=False)
    errors: dict[str, Counter[str]] = {}
    losses: dict[str, Counter[str]] = {}
    for case, mine, other in zip(cases, ours, theirs, strict=True):
        if mine is None or other is None:
            continue
        kind = classify(case, mine)
        if kind is None:
            continue
        errors.setdefault(case.category, Counter())[kind] += 1
        if is_correct(case, other):
            losses.setdefault(case.category, Counter())[kind] += 1
            if args.show:
                print(f"--- {case.id} ({kind}): {case.messages[-1]['content'][:300]!r}")
                print(f"expected: {json.dumps(case.expected)}")
                print(f"{args.system}: {mine.text!r}")
                print(f"{args.against}: {other.text!r}")
    done = sum(o is not None and t is not None for o, t in zip(ours, theirs, strict=True))
    print(f"{done} of {len(cases)} cases have outputs from both systems")
    categories = list(dict.fromkeys(c.category for c in cases))
    print("| kind | " + " | ".join(f"{c} errors/losses" for c in categories) + " |")
    print("|---|" + "---|" * len(categories))
    for kind in KINDS:
        cells = [
            f"{errors.get(c, Counter())[kind]}/{losses.get(c, Counter())[kind]}" for c in categories
        ]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
