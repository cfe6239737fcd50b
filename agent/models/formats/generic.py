"""Tool calls for models whose chat template knows nothing of tools (Gemma, SmolLM2, Llama 2).

Verity describes the tools in the system message and asks for the JSON form the Hermes format
already detects, constrains and parses (an array of `{"name": ..., "arguments": ...}` calls).
"""

from __future__ import annotations

import json

from agent.messages import Message
from agent.models._template import ChatTemplate
from agent.models.formats.hermes import HermesFormat
from tools.base import ToolSpec

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
        """Prepend the tool descriptions to the system message (adding one if needed)."""
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
