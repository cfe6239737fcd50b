"""A server's resources and prompts: listed, read, and offered to the model as read-only tools."""

from __future__ import annotations

from typing import Any

from mcp.shared.exceptions import MCPError
from mcp.types import METHOD_NOT_FOUND, Prompt, Resource, ResourceTemplate

from verity.tools.base import ToolError, ToolResult, ToolSpec
from verity.tools.mcp._connection import ServerConnection
from verity.tools.mcp._render import (
    GET_PROMPT,
    READ_RESOURCE,
    get_prompt_spec,
    read_resource_spec,
    render_content,
    render_resource_contents,
)

__all__ = [
    "call_extra",
    "capabilities",
    "extra_tools",
    "get_prompt",
    "list_prompts",
    "list_resources",
    "read_resource",
]


def capabilities(connection: ServerConnection) -> dict[str, Any]:
    """The capabilities the server announced, as a plain dict (empty when unknown)."""
    client = connection.client
    if client is None:
        return {}
    return client.server_capabilities.model_dump(exclude_none=True)


async def list_resources(
    connection: ServerConnection,
) -> tuple[list[Resource], list[ResourceTemplate]]:
    """The server's resources and resource templates.

    Raises:
        ToolError: the server is down or did not answer in time.
    """
    resources = await connection.request(
        "resources/list", lambda c: c.list_resources(cache_mode="refresh")
    )
    try:
        templates = await connection.request(
            "resources/templates/list", lambda c: c.list_resource_templates(cache_mode="refresh")
        )
    except MCPError as exc:
        if exc.code != METHOD_NOT_FOUND:
            raise
        # optional: servers with resources but no templates (mcp-server-sqlite) may not have it
        return resources.resources, []
    return resources.resources, templates.resource_templates


async def read_resource(connection: ServerConnection, uri: str) -> str:
    """The contents of one resource, as text for the model.

    Raises:
        ToolError: the server is down or did not answer in time.
        MCPError: the server does not know the resource.
    """
    result = await connection.request(
        "resources/read", lambda c: c.read_resource(uri, cache_mode="bypass")
    )
    return render_resource_contents(result.contents, max_chars=connection.spec.max_output_chars)


async def list_prompts(connection: ServerConnection) -> list[Prompt]:
    """The server's prompts.

    Raises:
        ToolError: the server is down or did not answer in time.
    """
    result = await connection.request(
        "prompts/list", lambda c: c.list_prompts(cache_mode="refresh")
    )
    return result.prompts


async def get_prompt(connection: ServerConnection, name: str, arguments: dict[str, str]) -> str:
    """One prompt rendered as text, each message headed by its role.

    Raises:
        ToolError: the server is down or did not answer in time.
        MCPError: the server does not know the prompt or rejects the arguments.
    """
    result = await connection.request("prompts/get", lambda c: c.get_prompt(name, arguments))
    cap = connection.spec.max_output_chars
    text = "\n\n".join(
        f"[{m.role}]\n{render_content([m.content], None, max_chars=cap)}" for m in result.messages
    )
    return text[:cap]


async def extra_tools(connection: ServerConnection) -> dict[str, ToolSpec]:
    """`read_resource` and `get_prompt` specs, where the server has resources or prompts."""
    announced = capabilities(connection)
    name = connection.spec.name
    extras: dict[str, ToolSpec] = {}
    if "resources" in announced:
        resources, templates = await list_resources(connection)
        if resources or templates:
            extras[READ_RESOURCE] = read_resource_spec(name, resources, templates)
    if "prompts" in announced:
        prompts = await list_prompts(connection)
        if prompts:
            extras[GET_PROMPT] = get_prompt_spec(name, prompts)
    return extras


async def call_extra(
    connection: ServerConnection, kind: str, arguments: dict[str, Any]
) -> ToolResult:
    """Run one of the tools `extra_tools()` offers.

    Raises:
        ToolError: the arguments are not what the tool takes, or the server failed.
        MCPError: the server does not know the resource or prompt.
    """
    if kind == READ_RESOURCE:
        uri = arguments.get("uri")
        if not isinstance(uri, str):
            raise ToolError("Give the resource's URI as the string argument 'uri'.")
        return ToolResult(content=await read_resource(connection, uri))
    prompt = arguments.get("name")
    prompt_args = arguments.get("arguments") or {}
    if not isinstance(prompt, str) or not isinstance(prompt_args, dict):
        raise ToolError("Give the prompt's 'name' and an 'arguments' object of strings.")
    text = await get_prompt(connection, prompt, {k: str(v) for k, v in prompt_args.items()})
    return ToolResult(content=text)
