"""The tool contract: what a tool is, what calling one returns, and `@tool` for Python functions."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints, overload

import anyio.to_thread
import docstring_parser
import pydantic

__all__ = ["FunctionTool", "ToolError", "ToolResult", "ToolSpec", "is_read_only", "tool"]

JSONSchema = dict[str, Any]


@dataclass(frozen=True)
class ToolSpec:
    """What the model is told about a tool."""

    name: str
    """Unique name the model calls the tool by."""
    description: str
    """One paragraph: what the tool does and when to use it."""
    parameters: JSONSchema
    """JSON Schema of the arguments object."""
    read_only: bool = False
    """The tool's claim that calling it changes nothing (`@tool(read_only=True)`, MCP
    `readOnlyHint`). Only a claim: ask `is_read_only(spec)` whether Verity believes it."""
    destructive: bool = False
    """The tool's claim that it may destroy data (MCP `destructiveHint: true`)."""
    closed_world: bool = False
    """The tool's claim that it reaches nothing outside its arguments (MCP `openWorldHint:
    false`, e.g. a sum): what it returns is worth no more than what it was given. Believed
    untrusted too, since it can only make the answer checks stricter."""
    trusted: bool = True
    """Whether the claims above come from a source the user trusts: the program's own Python
    tools, an MCP server only when its config entry says `"trust": true`."""
    protocol_read: str | None = None
    """For the tools Verity adds itself over an MCP server's resources and prompts: the
    protocol request they make (`resources/read`, `prompts/get`), read-only by the protocol;
    None for every other tool."""


def is_read_only(spec: ToolSpec) -> bool:
    """Verity's one rule for "calling this tool changes nothing".

    Approval, the verifier's re-checks and the reuse of earlier results all ask this. A claim
    counts only from a trusted source (MCP annotations are untrusted hints, per the spec), and a
    tool that also claims to be destructive is destructive.
    """
    return spec.trusted and spec.read_only and not spec.destructive


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call, as the model will see it."""

    content: str
    """Text shown to the model."""
    is_error: bool = False
    """True when the call failed; `content` then says what failed and what to try."""
    structured: Any = None
    """Structured output, when the tool returned more than text."""


class ToolError(Exception):
    """Raise inside a tool to report a failure the model should read and can act on."""


@dataclass(frozen=True)
class FunctionTool:
    """A Python function offered as a tool; arguments are validated before the call."""

    spec: ToolSpec
    function: Callable[..., Any]
    arguments_model: type[pydantic.BaseModel] = field(repr=False)

    async def call(self, arguments: dict[str, Any]) -> Any:
        """Validate `arguments` and call the function (sync functions run in a worker thread).

        Raises:
            pydantic.ValidationError: the arguments do not match the signature.
            Exception: whatever the function raises.
        """
        validated = self.arguments_model.model_validate(arguments)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if inspect.iscoroutinefunction(self.function):
            return await self.function(**kwargs)
        # abandon on cancel: a sync tool cannot be interrupted, and a timeout must still return
        return await anyio.to_thread.run_sync(
            lambda: self.function(**kwargs), abandon_on_cancel=True
        )


@overload
def tool(function: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *, name: str | None = None, read_only: bool = False
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    read_only: bool = False,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a typed function into a tool; its Google docstring becomes the description.

    Usable bare (`@tool`) or with options (`@tool(read_only=True)`).
    """

    def wrap(fn: Callable[..., Any] | Callable[..., Awaitable[Any]]) -> FunctionTool:
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        description = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
        param_docs = {p.arg_name: p.description or "" for p in doc.params}
        arguments_model = _arguments_model(fn, param_docs)
        schema = _without_titles(arguments_model.model_json_schema())
        spec = ToolSpec(
            name=name or fn.__name__,
            description=description or fn.__name__,
            parameters=schema,
            read_only=read_only,
        )
        return FunctionTool(spec=spec, function=fn, arguments_model=arguments_model)

    return wrap(function) if function is not None else wrap


def _arguments_model(
    fn: Callable[..., Any], param_docs: dict[str, str]
) -> type[pydantic.BaseModel]:
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        description = param_docs.get(param.name) or None
        fields[param.name] = (annotation, pydantic.Field(default, description=description))
    config = pydantic.ConfigDict(extra="forbid")
    return pydantic.create_model(f"{fn.__name__}_arguments", __config__=config, **fields)


def _without_titles(schema: Any) -> Any:
    """Drop pydantic's `title` keys: they cost prompt tokens and tell the model nothing."""
    if isinstance(schema, dict):
        return {
            key: _without_titles(value)
            for key, value in schema.items()
            # a string-valued "title" is annotation; a property named "title" maps to a dict
            if key != "title" or not isinstance(value, str)
        }
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    return schema
