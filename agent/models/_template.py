"""Rendering a conversation with the model's own chat template (Jinja, as in the GGUF)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from verity.errors import ModelError
from verity.messages import Message
from verity.models.base import function_tool
from verity.tools.base import ToolSpec

__all__ = ["ChatTemplate"]


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)


_SOURCE_CORRECTIONS = {
    # Qwen2.5-Coder's templates (the 1.5B demo model's among them) escape the braces of the call
    # example inside a Jinja string, so the prompt shows `{{"name": ...}}` and the model copies
    # the doubled braces into text that is no call at all.
    '{{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}}': (
        '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}'
    ),
}
"""Known slips in shipped chat templates, corrected in the source before it is compiled."""


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False) -> str:
    # transformers' tojson: no HTML escaping, which Jinja's built-in filter would add
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


class ChatTemplate:
    """A Jinja chat template in the sandbox Hugging Face templates expect."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now(UTC).strftime(fmt)
        for slip, correction in _SOURCE_CORRECTIONS.items():
            source = source.replace(slip, correction)
        self._template = env.from_string(source)
        self._bos_token = bos_token
        self._eos_token = eos_token

    def render(self, messages: list[Message], tools: list[ToolSpec]) -> str:
        """The prompt for the next assistant turn.

        An assistant message with `raw` text is rendered as that text, so the tokens the model
        generated come back identical and the KV cache prefix stays valid (design D2). Templates
        that refuse a system role (Gemma, Mistral) get the system text at the start of the first
        user message instead.

        Raises:
            ModelError: the template itself fails on this conversation.
        """
        try:
            return self._render(messages, tools)
        except jinja2.TemplateError as exc:
            if messages and messages[0].role == "system":
                try:
                    return self._render(_system_folded(messages), tools)
                except jinja2.TemplateError:
                    pass
            raise ModelError(
                f"The model's chat template failed on this conversation: {exc}"
            ) from None

    def _render(self, messages: list[Message], tools: list[ToolSpec]) -> str:
        return self._template.render(
            messages=[_template_message(m) for m in messages],
            tools=[function_tool(t) for t in tools] or None,
            add_generation_prompt=True,
            bos_token=self._bos_token,
            eos_token=self._eos_token,
        )


def _system_folded(messages: list[Message]) -> list[Message]:
    """The conversation with the leading system message merged into the first user message."""
    system, rest = messages[0], messages[1:]
    for index, message in enumerate(rest):
        if message.role == "user":
            merged = message.model_copy(
                update={"content": f"{system.content}\n\n{message.content}"}
            )
            return [*rest[:index], merged, *rest[index + 1 :]]
    return [Message(role="user", content=system.content), *rest]


def _template_message(message: Message) -> dict[str, Any]:
    if message.role == "assistant" and message.raw is not None:
        return {"role": "assistant", "content": message.raw, "raw": True}
    rendered: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        rendered["tool_calls"] = [
            {"type": "function", "id": c.id, "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        rendered["tool_call_id"] = message.tool_call_id
        rendered["name"] = message.name
    return rendered
