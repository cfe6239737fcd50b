"""How MCP names and results look to the model: `<server>__<tool>` names and capped text."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from mcp.types import (
    AudioContent,
    BlobResourceContents,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    Prompt,
    Resource,
    ResourceLink,
    ResourceTemplate,
    TextContent,
    TextResourceContents,
    Tool,
)

from verity.tools.base import ToolSpec
from verity.tools.mcp._names import SEPARATOR, tool_prefixes

__all__ = [
    "GET_PROMPT",
    "READ_RESOURCE",
    "SEPARATOR",
    "get_prompt_spec",
    "model_tool_name",
    "read_resource_spec",
    "render_content",
    "render_resource_contents",
    "tool_prefixes",
    "tool_spec",
]

READ_RESOURCE = "read_resource"
GET_PROMPT = "get_prompt"
_LISTED_RESOURCES = 20

# The strictest tool-name rule among the model APIs Verity speaks (OpenAI: ^[a-zA-Z0-9_-]{1,64}$).
_MAX_NAME = 64
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def model_tool_name(server: str, tool: str, taken: Iterable[str] = ()) -> str:
    """The name the model calls `tool` of `server` by: valid characters, unique among `taken`.

    A name that had to be altered (invalid characters, too long, or already taken) gets a short
    hash of the original, so two different tools never map to one name.
    """
    name = f"{server}{SEPARATOR}{_INVALID.sub('_', tool)}"
    taken = set(taken)
    if name == f"{server}{SEPARATOR}{tool}" and len(name) <= _MAX_NAME and name not in taken:
        return name
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()
    for width in range(6, 65):
        candidate = f"{name[: _MAX_NAME - width - 1]}_{digest[:width]}"
        if candidate not in taken:
            return candidate
    raise AssertionError("a sha256 prefix always disambiguates")  # pragma: no cover


def render_content(blocks: Sequence[ContentBlock], structured: Any, *, max_chars: int) -> str:
    """Text for the model from a tool result: text as is, media as notes, resources inline.

    Structured content is rendered as JSON only when the server sent no text, so the model never
    reads the same data twice. The text is cut at `max_chars`.
    """
    parts = [_render_block(block) for block in blocks]
    if structured is not None and not any(isinstance(b, TextContent) for b in blocks):
        parts.append(json.dumps(structured, ensure_ascii=False, default=str))
    return _cap("\n".join(parts), max_chars)


def render_resource_contents(
    contents: Sequence[TextResourceContents | BlobResourceContents], *, max_chars: int
) -> str:
    """Text for the model from a `resources/read` result."""
    return _cap("\n".join(_render_resource(item) for item in contents), max_chars)


def _render_block(block: ContentBlock) -> str:
    match block:
        case TextContent():
            return block.text
        case ImageContent() | AudioContent():
            size = _decoded_size(block.data)
            return f"[{block.type}: {block.mime_type}, {size} bytes, not shown to the model]"
        case EmbeddedResource():
            return _render_resource(block.resource)
        case ResourceLink():
            mime = f", {block.mime_type}" if block.mime_type else ""
            about = f": {block.description}" if block.description else ""
            return f"[resource link: {block.name} <{block.uri}>{mime}{about}]"
    return f"[unsupported content type {getattr(block, 'type', '?')!r}]"  # pragma: no cover


def _render_resource(item: TextResourceContents | BlobResourceContents) -> str:
    mime = f" ({item.mime_type})" if item.mime_type else ""
    if isinstance(item, TextResourceContents):
        return f"[resource <{item.uri}>{mime}]\n{item.text}"
    return f"[resource <{item.uri}>{mime}: {_decoded_size(item.blob)} bytes of binary data]"


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except ValueError:
        return len(data)


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n[... {len(text) - max_chars} more characters cut]"


def tool_spec(name: str, tool: Tool, *, trusted: bool = False) -> ToolSpec:
    """The spec the model sees for a server tool, with the server's hints as untrusted claims.

    `is_read_only()` believes `readOnlyHint` only where `trusted` (the user's `"trust": true`);
    `destructiveHint: true` beside it makes the tool destructive either way.
    """
    parameters = dict(tool.input_schema) or {"type": "object", "properties": {}}
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})
    hints = tool.annotations
    return ToolSpec(
        name=name,
        description=tool.description or tool.title or tool.name,
        parameters=parameters,
        read_only=bool(hints and hints.read_only_hint),
        destructive=bool(hints and hints.destructive_hint),
        closed_world=bool(hints and hints.open_world_hint is False),
        trusted=trusted,
    )


def read_resource_spec(
    server: str, resources: list[Resource], templates: list[ResourceTemplate]
) -> ToolSpec:
    """The read-only tool that reads one of a server's resources."""
    known = [f"- {r.uri}: {r.description or r.name}" for r in resources[:_LISTED_RESOURCES]]
    known += [f"- {t.uri_template} (template): {t.description or t.name}" for t in templates]
    more = len(resources) - _LISTED_RESOURCES
    if more > 0:
        known.append(f"- ... and {more} more")
    return ToolSpec(
        name=READ_RESOURCE,
        description=f"Read a resource of the {server!r} MCP server by URI. Known resources:\n"
        + ("\n".join(known) or "- none listed"),
        parameters={
            "type": "object",
            "properties": {"uri": {"type": "string", "description": "The resource URI."}},
            "required": ["uri"],
        },
        read_only=True,
        protocol_read="resources/read",
    )


def get_prompt_spec(server: str, prompts: list[Prompt]) -> ToolSpec:
    """The read-only tool that fills in one of a server's prompts."""
    lines = [
        f"- {p.name}({', '.join(a.name for a in p.arguments or [])}): {p.description or ''}"
        for p in prompts
    ]
    return ToolSpec(
        name=GET_PROMPT,
        description=f"Get a prompt template of the {server!r} MCP server, filled in:\n"
        + "\n".join(lines),
        parameters={
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [p.name for p in prompts]},
                "arguments": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["name"],
        },
        read_only=True,
        protocol_read="prompts/get",
    )
