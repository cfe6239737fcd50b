"""Every schema shape that crashed the old grammar path gets a working grammar (or, where
jsonschema cannot use it, a reason), checked token by token on the embedded model's vocabulary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_cpp import Llama

from tests.fixtures.grammar import grammar_accepts
from verity.models.formats import DeepSeekR1Format, HermesFormat
from verity.models.formats.base import validate_call
from verity.models.grammar import schema_grammar
from verity.models.grammar._bounds import MAX_DEPTH, MAX_ENUM, MAX_LENGTH
from verity.tools.base import ToolSpec
from verity.tools.schemas import schema_problem

# (schema, an instance it allows, an instance it forbids that post-validation must reject)
CRASHERS: dict[str, tuple[dict[str, Any], Any, Any]] = {
    "description-only property": (
        {
            "type": "object",
            "properties": {"value": {"description": "Any value at all."}},
            "required": ["value"],
        },
        {"value": [1, "two", None]},
        {},
    ),
    "items: {}": (
        {"type": "object", "properties": {"xs": {"type": "array", "items": {}}}},
        {"xs": [1, {"a": "b"}, None]},
        {"xs": "not a list"},
    ),
    "not": (
        {"type": "object", "properties": {"n": {"type": "integer", "not": {"const": 0}}}},
        {"n": 3},
        {"n": 0},
    ),
    "boolean schemas": (
        {"type": "object", "properties": {"x": True, "y": False}},
        {"x": {"any": "thing"}},
        {"y": 1},
    ),
    "unanchored pattern with (?:...)": (
        {"type": "object", "properties": {"id": {"type": "string", "pattern": "(?:ab)+-[0-9]"}}},
        {"id": "xxabab-7yy"},
        {"id": "ab7"},
    ),
    "\\d inside a character class": (
        {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[\\d-]+$"}}},
        {"code": "12-34"},
        {"code": "12a"},
    ),
    "nested definitions $ref": (
        {
            "type": "object",
            "properties": {"point": {"$ref": "#/definitions/Shapes/definitions/Point"}},
            "required": ["point"],
            "definitions": {
                "Shapes": {
                    "definitions": {
                        "Point": {
                            "type": "object",
                            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                            "required": ["x", "y"],
                        }
                    }
                }
            },
        },
        {"point": {"x": 1, "y": 2.5}},
        {"point": {"x": 1}},
    ),
    '$ref: "#"': (
        {"type": "object", "properties": {"child": {"$ref": "#"}, "name": {"type": "string"}}},
        {"child": {"child": {}, "name": "b"}, "name": "a"},  # properties in schema order
        {"child": {"name": 3}},
    ),
    "maxLength 32767": (
        {"type": "object", "properties": {"text": {"type": "string", "maxLength": 32767}}},
        {"text": "short enough"},
        {"text": 5},
    ),
}


@pytest.fixture(scope="module")
def qwen(embedded_path: Path) -> Iterator[Llama]:
    llm = Llama(str(embedded_path), vocab_only=True, verbose=False)
    yield llm
    llm.close()


def _spec(name: str, schema: dict[str, Any]) -> ToolSpec:
    return ToolSpec(name=name, description="", parameters=schema)


@pytest.mark.parametrize("case", list(CRASHERS))
def test_a_crasher_schema_gets_a_grammar_that_takes_its_valid_calls(qwen: Llama, case: str) -> None:
    schema, good, bad = CRASHERS[case]
    assert schema_problem(schema) is None
    grammar = HermesFormat().grammar([_spec("tool", schema)])
    call = json.dumps({"name": "tool", "arguments": good})
    assert grammar_accepts(qwen, grammar, call)
    assert grammar_accepts(qwen, grammar, f"```json\n[{call}]\n```")
    # what the grammar lets through, post-validation still catches
    assert validate_call({"name": "tool", "arguments": good}, [_spec("tool", schema)], "c")[0]
    _, problem = validate_call({"name": "tool", "arguments": bad}, [_spec("tool", schema)], "c")
    assert problem is not None and problem.startswith("Invalid arguments for 'tool'")


def test_the_exact_crashers_stay_exact_and_the_others_say_what_they_dropped() -> None:
    levels = {case: schema_grammar(schema) for case, (schema, _, _) in CRASHERS.items()}
    assert {case for case, g in levels.items() if g.level == "exact"} == {
        "description-only property",
        "items: {}",
        "boolean schemas",
        "unanchored pattern with (?:...)",
        "\\d inside a character class",
        "nested definitions $ref",
        '$ref: "#"',
    }
    assert (levels["not"].level, levels["not"].dropped) == ("relaxed", ("not",))
    assert (levels["maxLength 32767"].level, levels["maxLength 32767"].dropped) == (
        "relaxed",
        ("maxLength",),
    )


def test_the_exact_grammar_enforces_what_the_schema_says(qwen: Llama) -> None:
    pattern, _, bad_pattern = CRASHERS["\\d inside a character class"]
    nested, _, missing_y = CRASHERS["nested definitions $ref"]
    for schema, bad in ((pattern, bad_pattern), (nested, missing_y)):
        grammar = HermesFormat().grammar([_spec("tool", schema)])
        assert not grammar_accepts(qwen, grammar, json.dumps({"name": "tool", "arguments": bad}))


def test_a_dangling_ref_is_unusable_and_its_call_is_a_retry_not_an_exception() -> None:
    schema = {"type": "object", "properties": {"key": {"$ref": "#/definitions/Key"}}}
    assert schema_problem(schema) == "its $ref '#/definitions/Key' cannot be resolved"
    remote = {"$ref": "http://localhost:1234/draft2020-12/integer.json"}
    assert schema_problem(remote) == (
        "its $ref 'http://localhost:1234/draft2020-12/integer.json' is remote, and remote "
        "schemas are never fetched"
    )
    call, problem = validate_call({"name": "t", "arguments": {"key": 1}}, [_spec("t", schema)], "c")
    assert call is None
    assert problem == (
        "The tool 't' cannot be called: its parameter schema is unusable: its $ref "
        "'#/definitions/Key' cannot be resolved."
    )
    # offered anyway (a direct API user), it still gets a grammar: any JSON object
    assert schema_grammar(schema).level == "any"


def test_invalid_and_absurdly_deep_schemas_are_unusable_with_a_reason() -> None:
    assert schema_problem({"type": "objekt"}) == (
        "it is not a valid JSON Schema ('objekt' is not valid under any of the given schemas "
        "at type)"
    )
    deep: dict[str, Any] = {}
    for _ in range(300):
        deep = {"type": "object", "properties": {"a": deep}}
    assert schema_problem(deep) == "it is nested more than 200 levels deep"
    assert schema_problem([1, 2]) == "it is not a JSON object"


def test_bounds_are_capped_before_the_engine_sees_them(qwen: Llama) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_DEPTH + 10):
        deep = {"type": "object", "properties": {"a": deep}}
    schema = {
        "type": "object",
        "properties": {
            "many": {"enum": list(range(MAX_ENUM + 1))},
            "long": {"type": "string", "minLength": MAX_LENGTH + 1},
            "list": {"type": "array", "minItems": 100_000, "items": {"type": "integer"}},
            "pattern": {"type": "string", "pattern": "a" * 5000},
            "deep": deep,
        },
    }
    grammar = schema_grammar(schema)
    assert (grammar.level, grammar.dropped) == (
        "relaxed",
        ("enum", "minItems", "minLength", "pattern", f"subschemas nested deeper than {MAX_DEPTH}"),
    )
    tool = HermesFormat().grammar([_spec("tool", schema)])
    call = {"name": "tool", "arguments": {"many": 5, "long": "x", "list": [1]}}
    assert grammar_accepts(qwen, tool, json.dumps(call))


def test_one_grammar_holds_every_crasher_next_to_a_plain_tool(qwen: Llama) -> None:
    plain = _spec(
        "add", {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    )
    broken = _spec("lookup", {"type": "object", "properties": {"k": {"$ref": "#/nope"}}})
    tools = [plain, broken, *(_spec(f"t{i}", s) for i, (s, _, _) in enumerate(CRASHERS.values()))]
    for call_format in (HermesFormat(), DeepSeekR1Format()):
        assert "start:" in call_format.grammar(tools)
    hermes = HermesFormat().grammar(tools)
    assert grammar_accepts(qwen, hermes, '{"name": "add", "arguments": {"a": 2}}')
    assert grammar_accepts(qwen, hermes, '{"name": "lookup", "arguments": {"k": "anything"}}')
    assert not grammar_accepts(qwen, hermes, '{"name": "add", "arguments": {"a": "2"}}')
