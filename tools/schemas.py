"""Whether a tool's JSON Schema can be used at all, and the validator that checks calls against it.

A server may publish any schema its framework generates. One that jsonschema itself cannot use
(invalid, a `$ref` that points nowhere, a remote `$ref` that nobody may fetch) makes only that
tool unavailable; everything else about a schema is the grammar's business. Nothing here ever
fetches a document: remote references count as unresolvable.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
import jsonschema.validators
from jsonschema.exceptions import SchemaError
from jsonschema_specifications import REGISTRY as _METASCHEMAS
from referencing import Specification
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

__all__ = ["schema_problem", "validator_for"]

MAX_SCHEMA_DEPTH = 200
"""Deeper schemas are refused: validating them would exhaust Python's recursion."""


_REGISTRY = _METASCHEMAS.combine()  # the metaschemas resolve; nothing is ever retrieved


def schema_problem(schema: Any) -> str | None:
    """Why jsonschema cannot use `schema`, in a few words; None when it can.

    Every `$ref` is resolved up front, so a broken one is found before a call ever needs it.
    """
    return _problem(_key(schema))


def validator_for(schema: Any) -> Any:
    """A validator for `schema` (its own `$schema` dialect, 2020-12 by default), checking formats.

    Raises:
        ValueError: the schema is unusable (see `schema_problem`).
    """
    key = _key(schema)
    problem = _problem(key)
    if problem is not None:
        raise ValueError(problem)
    return _validator(key)


def _key(schema: Any) -> str:
    try:
        return json.dumps(schema, sort_keys=True)
    except RecursionError:
        return ""  # refused below as too deep
    except (TypeError, ValueError):
        return "null"  # not JSON at all: refused below


@lru_cache(maxsize=512)
def _validator(key: str) -> Any:
    schema = json.loads(key)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, registry=_REGISTRY, format_checker=cls.FORMAT_CHECKER)


@lru_cache(maxsize=512)
def _problem(key: str) -> str | None:
    if not key:
        return f"it is nested more than {MAX_SCHEMA_DEPTH} levels deep"
    schema = json.loads(key)
    if not isinstance(schema, dict | bool):
        return "it is not a JSON object"
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        return f"it is nested more than {MAX_SCHEMA_DEPTH} levels deep"
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        at = f" at {where}" if where else ""
        return f"it is not a valid JSON Schema ({exc.message[:160]}{at})"
    if isinstance(schema, bool):
        return None
    specification = specification_with(schema.get("$schema", ""), default=DRAFT202012)
    resource = specification.create_resource(schema)
    resolver = _REGISTRY.resolver_with_root(resource)
    try:
        _resolve_all(resolver, schema, specification)
    except _BrokenRef as broken:
        if "://" in broken.ref:
            return f"its $ref {broken.ref!r} is remote, and remote schemas are never fetched"
        return f"its $ref {broken.ref!r} cannot be resolved"
    return None


class _BrokenRef(Exception):
    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


def _resolve_all(resolver: Any, contents: Any, specification: Specification[Any]) -> None:
    """Look up every `$ref` below `contents`, following `$id` scopes as validation would."""
    if not isinstance(contents, dict):
        return
    ref = contents.get("$ref")
    if isinstance(ref, str):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise _BrokenRef(ref) from None
    for sub in specification.subresources_of(contents):
        subresource = specification.create_resource(sub)
        _resolve_all(resolver.in_subresource(subresource), sub, specification)


def _depth(node: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return deepest
