"""`@tool`: a typed function with a Google docstring becomes a tool spec and a validated call."""

from __future__ import annotations

import threading

import anyio
import pydantic
import pytest

from verity.tools.base import FunctionTool, ToolSpec, tool


class Point(pydantic.BaseModel):
    """A point on the plane."""

    x: float
    y: float


@tool
def search(query: str, limit: int = 10, title: str | None = None) -> list[str]:
    """Search the notes.

    Matches are case-insensitive.

    Args:
        query: Words to look for.
        limit: At most this many results.
        title: Only notes with this title.

    Returns:
        Matching note titles.
    """
    return [f"{query}:{limit}:{title}"]


@tool(name="distance_from_origin", read_only=True)
async def distance(point: Point) -> float:
    """Measure how far a point is from the origin.

    Args:
        point: Where to measure from.
    """
    return float((point.x**2 + point.y**2) ** 0.5)


def test_tool_builds_the_spec_from_the_signature_and_docstring() -> None:
    assert search.spec == ToolSpec(
        name="search",
        description="Search the notes.\n\nMatches are case-insensitive.",
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words to look for."},
                "limit": {
                    "type": "integer",
                    "default": 10,
                    "description": "At most this many results.",
                },
                "title": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "default": None,
                    "description": "Only notes with this title.",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        read_only=False,
    )


def test_tool_keeps_a_parameter_named_title_but_drops_generated_titles() -> None:
    assert search.spec.parameters["properties"]["title"]["description"] == (
        "Only notes with this title."
    )
    assert "title" not in search.spec.parameters


def test_tool_with_options_sets_the_name_and_read_only_flag() -> None:
    assert isinstance(distance, FunctionTool)
    assert distance.spec == ToolSpec(
        name="distance_from_origin",
        description="Measure how far a point is from the origin.",
        parameters={
            "type": "object",
            "$defs": {
                "Point": {
                    "type": "object",
                    "description": "A point on the plane.",
                    "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                    "required": ["x", "y"],
                }
            },
            "properties": {
                "point": {"$ref": "#/$defs/Point", "description": "Where to measure from."}
            },
            "required": ["point"],
            "additionalProperties": False,
        },
        read_only=True,
    )


def test_tool_without_a_docstring_is_described_by_its_name() -> None:
    def ping() -> str:
        return "pong"

    assert tool(ping).spec == ToolSpec(
        name="ping",
        description="ping",
        parameters={"type": "object", "properties": {}, "additionalProperties": False},
    )


async def test_function_tool_calls_a_sync_function_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()

    @tool
    def where() -> bool:
        """Report whether this runs off the event loop thread."""
        return threading.get_ident() != loop_thread

    with anyio.fail_after(5):
        assert await where.call({}) is True
        assert await search.call({"query": "tea"}) == ["tea:10:None"]


async def test_function_tool_calls_an_async_function_with_validated_arguments() -> None:
    with anyio.fail_after(5):
        result = await distance.call({"point": {"x": "3", "y": 4}})
    assert result == 5.0


async def test_function_tool_call_fills_defaults_and_coerces_arguments() -> None:
    with anyio.fail_after(5):
        result = await search.call({"query": "tea", "limit": "3", "title": "Drinks"})
    assert result == ["tea:3:Drinks"]


@pytest.mark.parametrize(
    ("arguments", "field", "error_type"),
    [
        ({}, "query", "missing"),
        ({"query": "tea", "limit": "many"}, "limit", "int_parsing"),
        ({"query": "tea", "colour": "red"}, "colour", "extra_forbidden"),
    ],
)
async def test_function_tool_call_raises_validation_error_for_invalid_arguments(
    arguments: dict[str, object], field: str, error_type: str
) -> None:
    with anyio.fail_after(5), pytest.raises(pydantic.ValidationError) as info:
        await search.call(arguments)
    assert [(err["loc"], err["type"]) for err in info.value.errors()] == [((field,), error_type)]
