"""Rewrite a JSON Schema keyword by keyword, knowing which keywords hold subschemas.

A property named `pattern` or `$ref` is a name, not a keyword: the walk tells the two apart, so
the rewrites in `_bounds` and `_ladder` touch only real keywords.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SUBSCHEMA_KEYWORDS", "rewrite"]

_ONE = frozenset(
    {
        "additionalProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedItems",
        "unevaluatedProperties",
        "additionalItems",
        "contentSchema",
    }
)
_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
SUBSCHEMA_KEYWORDS = _ONE | _LIST | _MAP | {"items", "dependencies"}

Edit = Callable[[dict[str, Any], int], dict[str, Any]]
"""Gets one schema object (its subschemas already rewritten) and its depth; returns the new one."""


def rewrite(schema: Any, edit: Edit, *, max_depth: int) -> Any:
    """`schema` with `edit` applied to every schema object, innermost first.

    Subschemas deeper than `max_depth` become `True` (anything), so no rewrite recurses
    without bound; callers report that as a loosening.
    """
    return _rewrite(schema, edit, 0, max_depth)


def _rewrite(node: Any, edit: Edit, depth: int, max_depth: int) -> Any:
    if not isinstance(node, dict):
        return node
    if depth > max_depth:
        return True
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ONE or (key == "items" and not isinstance(value, list)):
            result[key] = _rewrite(value, edit, depth + 1, max_depth)
        elif key in _LIST or (key == "items" and isinstance(value, list)):
            result[key] = (
                [_rewrite(item, edit, depth + 1, max_depth) for item in value]
                if isinstance(value, list)
                else value
            )
        elif key in _MAP or key == "dependencies":
            result[key] = (
                {
                    name: _rewrite(item, edit, depth + 1, max_depth)
                    if isinstance(item, dict)
                    else item
                    for name, item in value.items()
                }
                if isinstance(value, dict)
                else value
            )
        else:
            result[key] = value
    return edit(result, depth)
