"""Server names as users write them become valid, distinct tool-name prefixes."""

from __future__ import annotations

import re

from verity.tools.mcp import model_tool_name, tool_prefixes

VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def test_names_with_dots_spaces_and_underscores_become_valid_distinct_prefixes() -> None:
    names = ["github.com", "my server", "a__b", "a_b", "  ", "x" * 80, "日本"]
    prefixes = tool_prefixes(names)
    assert prefixes["github.com"] == "github_com"
    assert prefixes["my server"] == "my_server"
    assert prefixes["a__b"] == "a_b"
    assert prefixes["a_b"].startswith("a_b-") and len(prefixes["a_b"]) == 10  # hashed: taken
    assert len(set(prefixes.values())) == len(names)
    for prefix in prefixes.values():
        assert "__" not in prefix and not prefix.endswith("_")
        assert VALID.match(model_tool_name(prefix, "read file"))
