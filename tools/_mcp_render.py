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
    ResourceLink,
    TextContent,
    TextResourceContents,
)

__all__ = ["SEPARATOR", "model_tool_name", "render_content", "render_resource_contents"]

SEPARATOR = "__"
"""Between the server and the tool name. Server names may not contain it, so names never collide."""

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
