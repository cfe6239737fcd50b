"""Tool calls for models whose chat template knows nothing of tools (Gemma, SmolLM2, Llama 2).

Verity describes the tools in the system message and asks for the JSON form the Hermes format
already detects, constrains and parses (an array of `{"name": ..., "arguments": ...}` calls).
Such templates know no "tool" role either: some render it under a role the model never saw,
others drop it or insist that user and assistant alternate. So calls and results are rewritten
into turns every template has: an assistant turn holding the JSON array (unless the model's own
raw text is kept), and one user turn quoting which tool returned what.
"""

from __future__ import annotations

import json

from verity.messages import Message, ToolCall
from verity.models._template import ChatTemplate
from verity.models.formats.hermes import HermesFormat
from verity.tools.base import ToolSpec

__all__ = ["GenericJSONFormat", "tools_system_text"]


def tools_system_text(tools: list[ToolSpec]) -> str:
    """The tool descriptions and the call syntax, for a system message."""
    lines = ["You can call these tools:"]
    for spec in tools:
        lines.append(f"- {spec.name}: {spec.description}")
        lines.append(f"  Parameters (JSON Schema): {json.dumps(spec.parameters)}")
    lines.append(
        "To call tools, answer with only a JSON array of calls, no other text: "
        '[{"name": "<tool name>", "arguments": {<arguments>}}], one object per call '
        "(several when the request asks for several things). "
        "If no tool is needed, answer in plain text."
    )
    return "\n".join(lines)


class GenericJSONFormat(HermesFormat):
    """JSON calls for templates without tool support; tools go into the system message."""

    name = "generic_json"

    def render(self, template: ChatTemplate, messages: list[Message], tools: list[ToolSpec]) -> str:
        """Prepend the tool descriptions to the system message (adding one if needed), and
        turn calls and results into assistant and user turns."""
        messages = _without_tool_turns(messages)
        if tools:
            addition = tools_system_text(tools)
            if messages and messages[0].role == "system":
                first = messages[0].model_copy(
                    update={"content": f"{messages[0].content}\n\n{addition}"}
                )
                messages = [first, *messages[1:]]
            else:
                messages = [Message(role="system", content=addition), *messages]
        return template.render(messages, [])


def _without_tool_turns(messages: list[Message]) -> list[Message]:
    """The conversation with only system, user and assistant turns.

    The results of one step share one user turn, so user and assistant still alternate.
    """
    calls: dict[str, ToolCall] = {}
    rewritten: list[Message] = []
    results: list[str] = []
    for message in messages:
        if message.role == "tool":
            results.append(_quote_result(message, calls.get(message.tool_call_id or "")))
            continue
        if results:
            rewritten.append(Message(role="user", content="\n\n".join(results)))
            results = []
        if message.role == "assistant" and message.tool_calls:
            calls.update((call.id, call) for call in message.tool_calls)
            if message.raw is None:  # a raw turn already holds the calls as the model wrote them
                message = _assistant_calls_turn(message)
        rewritten.append(message)
    if results:
        rewritten.append(Message(role="user", content="\n\n".join(results)))
    return rewritten


def _assistant_calls_turn(message: Message) -> Message:
    array = json.dumps([{"name": c.name, "arguments": c.arguments} for c in message.tool_calls])
    content = f"{message.content}\n{array}" if message.content else array
    return message.model_copy(update={"content": content, "tool_calls": []})


def _quote_result(message: Message, call: ToolCall | None) -> str:
    if call is None:
        return f"The tool {message.name or 'call'} returned:\n{message.content}"
    return f"The tool call {call.name}({json.dumps(call.arguments)}) returned:\n{message.content}"
