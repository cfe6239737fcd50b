"""The BFCL correctness rule used by bench/bfcl.py (a wrong scorer would make every number lie)."""

from __future__ import annotations

from typing import Any

from bench.bfcl_scoring import (
    Case,
    Outcome,
    call_matches,
    halves,
    is_correct,
    sample_cases,
    to_json_schema,
)

AREA: dict[str, dict[str, list[Any]]] = {
    "calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}
}


def outcome(*calls: tuple[str, dict[str, Any]]) -> Outcome:
    return Outcome(calls=list(calls), parsed=True, schema_valid=True, seconds=0.0)


def test_a_call_matches_when_values_are_allowed_and_optional_ones_omitted() -> None:
    assert call_matches(("calculate_triangle_area", {"base": 10, "height": 5.0}), AREA)
    assert call_matches(
        ("calculate_triangle_area", {"base": 10, "height": 5, "unit": " units"}), AREA
    )


def test_a_call_does_not_match_with_a_wrong_value_a_missing_required_or_an_extra_key() -> None:
    assert not call_matches(("calculate_triangle_area", {"base": 10, "height": 6}), AREA)
    assert not call_matches(("calculate_triangle_area", {"base": 10}), AREA)
    assert not call_matches(("calculate_triangle_area", {"base": 10, "height": 5, "x": 1}), AREA)
    assert not call_matches(("triangle_area", {"base": 10, "height": 5}), AREA)
    assert not call_matches(("calculate_triangle_area", {"base": "10", "height": 5}), AREA)


def test_parallel_calls_match_in_any_order_and_irrelevance_wants_no_call() -> None:
    play = Case("p", "parallel", [], [], [{"play": {"artist": ["A"]}}, {"play": {"artist": ["B"]}}])
    assert is_correct(play, outcome(("play", {"artist": "B"}), ("play", {"artist": "A"})))
    assert not is_correct(play, outcome(("play", {"artist": "A"})))
    irrelevant = Case("i", "irrelevance", [], [])
    assert is_correct(irrelevant, outcome())
    assert not is_correct(irrelevant, outcome(("play", {"artist": "A"})))


def test_bfcl_types_become_json_schema_types() -> None:
    schema = {"type": "dict", "properties": {"x": {"type": "float"}, "t": {"type": "tuple"}}}
    assert to_json_schema(schema) == {
        "type": "object",
        "properties": {"x": {"type": "number"}, "t": {"type": "array"}},
        "additionalProperties": False,
    }


def test_the_sample_spreads_over_each_category_and_the_halves_split_it() -> None:
    cases = [Case(f"{cat}_{i}", cat, [], []) for cat in ("simple", "multiple") for i in range(300)]
    sample = sample_cases(cases, 100, seed=0)
    simple = [int(c.id.split("_")[1]) for c in sample if c.category == "simple"]
    assert len(simple) == 100 and simple == sorted(simple)
    assert max(simple) > 250 and simple != list(range(100))  # not the first 100
    assert sample == sample_cases(cases, 100, seed=0)
    assert sample != sample_cases(cases, 100, seed=1)
    half = halves(sample)
    assert [c.id for c in sample if half[c.id] == "A" and c.category == "simple"] != []
    for category in ("simple", "multiple"):
        assert sum(half[c.id] == "A" for c in sample if c.category == category) == 50
    assert halves(sample[::-1]) == half  # fixed by the ids, not by their order


def test_a_category_smaller_than_the_sample_is_taken_whole() -> None:
    cases = [Case(f"x_{i}", "x", [], []) for i in range(7)]
    assert sample_cases(cases, 100) == cases


def test_nested_objects_list_the_allowed_values_of_each_key_as_bfcl_does() -> None:
    budget = {"find": {"budget": [{"min": [300000], "max": [400000, ""]}]}}
    assert call_matches(("find", {"budget": {"min": 300000, "max": 400000}}), budget)
    assert call_matches(("find", {"budget": {"min": 300000}}), budget)
    assert not call_matches(("find", {"budget": {"max": 400000}}), budget)
    assert not call_matches(("find", {"budget": {"min": 1, "max": 400000}}), budget)
    assert not call_matches(("find", {"budget": {"min": 300000, "cap": 2}}), budget)
    conditions = {"q": {"where": [[{"field": ["age"]}, {"field": ["job"]}]]}}
    assert call_matches(("q", {"where": [{"field": "age"}, {"field": "job"}]}), conditions)
    assert not call_matches(("q", {"where": [{"field": "job"}, {"field": "age"}]}), conditions)
