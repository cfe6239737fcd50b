"""BFCL cases and the correctness rule of ../shared/bench/README.md, shared by bench/bfcl.py."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"]
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


@dataclass
class Case:
    """One BFCL case: the user turn, the offered functions and the expected calls."""

    id: str
    category: str
    messages: list[dict[str, str]]
    functions: list[dict[str, Any]]
    expected: list[dict[str, dict[str, list[Any]]]] = field(default_factory=list)


@dataclass
class Outcome:
    """What one system produced for one case."""

    calls: list[tuple[str, dict[str, Any]]]
    parsed: bool
    """Every call-shaped output parsed as JSON."""
    schema_valid: bool
    """Every call named an offered function with arguments valid against its schema."""
    seconds: float
    text: str = ""
    """The model's output as generated (for reading losses case by case)."""


def load_cases(directory: Path, categories: list[str]) -> list[Case]:
    """Every case of each category, with its answers, in file order."""
    cases = []
    for category in categories:
        path = directory / f"BFCL_v4_{category}.json"
        if not path.is_file():
            raise SystemExit(f"bfcl: no {path.name} in {directory} (pass --data DIR)")
        answers: dict[str, Any] = {}
        answer_path = directory / f"answer_BFCL_v4_{category}.json"
        if answer_path.is_file():
            for line in answer_path.read_text().splitlines():
                row = json.loads(line)
                answers[row["id"]] = row["ground_truth"]
        for line in path.read_text().splitlines():
            row = json.loads(line)
            cases.append(
                Case(
                    row["id"],
                    category,
                    row["question"][0],
                    row["function"],
                    answers.get(row["id"], []),
                )
            )
    return cases


def sample_cases(cases: list[Case], per_category: int, *, seed: int = 0) -> list[Case]:
    """`per_category` cases of each category drawn by a seeded shuffle over the whole category
    (not its first cases, where earlier changes were tried), kept in file order."""
    chosen: list[Case] = []
    for category in dict.fromkeys(c.category for c in cases):
        members = [c for c in cases if c.category == category]
        picked = random.Random(f"{seed}:{category}").sample(
            range(len(members)), min(per_category, len(members))
        )
        chosen.extend(members[i] for i in sorted(picked))
    return chosen


def halves(cases: list[Case]) -> dict[str, str]:
    """Each case's half, "A" or "B": within each category, the half whose case ids hash lowest is
    A (balanced, and fixed by the ids alone). Tune on one half, check on the other."""
    half: dict[str, str] = {}
    for category in dict.fromkeys(c.category for c in cases):
        ids = sorted(
            (c.id for c in cases if c.category == category),
            key=lambda i: hashlib.sha256(i.encode()).hexdigest(),
        )
        half.update((i, "A" if rank < len(ids) / 2 else "B") for rank, i in enumerate(ids))
    return half


def to_json_schema(node: Any) -> Any:
    """BFCL's schema dialect ("dict", "float", "tuple") as standard JSON Schema."""
    if isinstance(node, dict):
        converted = {key: to_json_schema(value) for key, value in node.items()}
        if isinstance(node.get("type"), str) and node["type"] in _TYPES:
            mapped = _TYPES[node["type"]]
            if mapped is None:
                converted.pop("type")
            else:
                converted["type"] = mapped
        if converted.get("type") == "object" and "properties" in converted:
            converted.setdefault("additionalProperties", False)
        return converted
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    return node


def _same(value: Any, allowed: Any) -> bool:
    if isinstance(allowed, bool) or isinstance(value, bool):
        return value is allowed or value == allowed and type(value) is type(allowed)
    if isinstance(allowed, int | float) and isinstance(value, int | float):
        return float(value) == float(allowed)
    if isinstance(allowed, str) and isinstance(value, str):
        return value.strip() == allowed.strip()
    if isinstance(allowed, list) and isinstance(value, list):
        return len(value) == len(allowed) and all(map(_same, value, allowed))
    if isinstance(allowed, dict) and isinstance(value, dict):
        return _dict_matches(value, allowed)
    return False


def _dict_matches(value: dict[str, Any], allowed: dict[str, Any]) -> bool:
    """A nested object: like a call's arguments, each key lists the values it may take."""
    options = {k: v if isinstance(v, list) else [v] for k, v in allowed.items()}
    if any(key not in options for key in value):
        return False
    if any(key not in value and "" not in opts for key, opts in options.items()):
        return False
    return all(any(_same(v, option) for option in options[k]) for k, v in value.items())


def call_matches(
    call: tuple[str, dict[str, Any]], expected: dict[str, dict[str, list[Any]]]
) -> bool:
    """The README's rule: same name, every given value allowed, every required one given."""
    name, arguments = call
    ((expected_name, params),) = expected.items()
    if name != expected_name:
        return False
    for key, value in arguments.items():
        if not any(_same(value, allowed) for allowed in params.get(key, [])):
            return False
    return all(key in arguments for key, allowed in params.items() if "" not in allowed)


def is_correct(case: Case, outcome: Outcome) -> bool:
    """Irrelevance: no call at all. Otherwise the calls match the expected ones in some order."""
    if case.category == "irrelevance":
        return not outcome.calls
    if len(outcome.calls) != len(case.expected):
        return False
    return any(
        all(
            call_matches(call, expected)
            for call, expected in zip(order, case.expected, strict=True)
        )
        for order in itertools.permutations(outcome.calls)
    )
