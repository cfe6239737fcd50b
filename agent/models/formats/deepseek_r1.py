"""DeepSeek-R1 tool calls, as the R1 models and their Qwen/Llama distills were trained to write:

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
    ```json
    {...arguments...}
    ```<｜tool▁call▁end｜><｜tool▁calls▁end｜>

The distills' own chat template ignores `tools`, renders calls only for messages whose content is
None, and never resets its tool-output state; like llama.cpp, Verity renders a corrected template
that describes the tools in the system prompt. Within a run the model's own turns are rendered
verbatim (thoughts included) so the KV prefix stays valid; earlier turns without `raw` have
their thoughts dropped, as the original template does.
"""

from __future__ import annotations

import json
import re

from verity.messages import Message, ToolCall
from verity.models._template import ChatTemplate
from verity.models.formats.base import (
    CallStart,
    ParsedCalls,
    lark_literal,
    tool_grammars,
    validate_call,
)
from verity.tools.base import ToolSpec

__all__ = ["DeepSeekR1Format"]

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"

TEMPLATE = (
    "{%- set ns = namespace(system='', is_tool=false, is_output_first=true) -%}"
    "{%- for m in messages if m.role == 'system' %}{% set ns.system = m.content %}{% endfor -%}"
    "{{ bos_token }}{{ ns.system }}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'user' -%}{%- set ns.is_tool = false -%}{{ '<｜User｜>' + m.content }}"
    "{%- elif m.role == 'assistant' -%}"
    "{%- set ns.is_output_first = true -%}"
    "{%- if ns.is_tool %}{{ '<｜tool▁outputs▁end｜>' }}"
    "{%- else %}{{ '<｜Assistant｜>' }}{% endif -%}"
    "{%- set ns.is_tool = false -%}"
    "{%- if m.raw %}{{ m.content }}{% else %}{{ (m.content or '').split('</think>')[-1] }}"
    "{%- if m.tool_calls %}" + "{{ '" + CALLS_BEGIN + "' }}"
    "{%- for c in m.tool_calls %}{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "{{ '" + CALL_BEGIN + "function" + SEP + "' + c.function.name + '\\n```json\\n' "
    "+ (c.function.arguments | tojson) + '\\n```" + CALL_END + "' }}{% endfor %}"
    "{{ '" + CALLS_END + "' }}{% endif %}{% endif -%}"
    "{{ '<｜end▁of▁sentence｜>' }}"
    "{%- elif m.role == 'tool' -%}"
    "{%- if ns.is_output_first %}{{ '<｜tool▁outputs▁begin｜>' }}{% else %}{{ '\\n' }}{% endif -%}"
    "{%- set ns.is_tool = true -%}{%- set ns.is_output_first = false -%}"
    "{{ '<｜tool▁output▁begin｜>' + m.content + '<｜tool▁output▁end｜>' }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if ns.is_tool %}{{ '<｜tool▁outputs▁end｜>' }}"
    "{%- elif add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif -%}"
)

# R1 models misspell their markers (underscores or spaces for ▁): accept them when parsing.
_FLEX = r"[▁_ ]"
_CALL = re.compile(
    rf"<｜tool{_FLEX}call{_FLEX}begin｜>\s*(?:function)?\s*<｜tool{_FLEX}sep｜>\s*(?P<name>[^\n`]+?)\s*\n"
    rf"```(?:json)?\s*(?P<arguments>.*?)\s*```\s*(?:<｜tool{_FLEX}call{_FLEX}end｜>|\Z)",
    re.S,
)
_BLOCK = re.compile(
    rf"<｜tool{_FLEX}calls{_FLEX}begin｜>.*?(?:<｜tool{_FLEX}calls{_FLEX}end｜>|\Z)", re.S
)
_OPENING = re.compile(rf"<｜tool{_FLEX}calls?{_FLEX}begin｜>")


class DeepSeekR1Format:
    """The tool-call format of DeepSeek-R1 and its distills."""

    name = "deepseek_r1"

    def __init__(self, *, bos_token: str = "") -> None:
        self._template = ChatTemplate(TEMPLATE, bos_token=bos_token)

    def render(self, template: ChatTemplate, messages: list[Message], tools: list[ToolSpec]) -> str:
        """Render with the corrected template; the tools are described in the system prompt."""
        if tools:
            system = next((m.content for m in messages if m.role == "system"), "")
            described = Message(role="system", content=system + _tools_text(tools))
            messages = [described, *(m for m in messages if m.role != "system")]
        return self._template.render(messages, [])

    def call_start(self, content: str) -> CallStart:
        """A call starts with the calls (or call) marker, also misspelled."""
        text = content.lstrip()
        if _OPENING.match(text):
            return "call"
        if not text or any(m.startswith(text) for m in (CALLS_BEGIN, CALL_BEGIN)):
            return "undecided"
        return "text" if not text.startswith("<｜tool") else "undecided"

    def find_call(self, content: str) -> int | None:
        """The calls (or call) marker, also misspelled, anywhere in the text."""
        match = _OPENING.search(content)
        return match.start() if match else None

    def grammar(self, tools: list[ToolSpec]) -> str:
        """One calls block holding one or more calls, each bound to its tool's schema."""
        calls = " | ".join(f"call_{index}" for index in range(len(tools)))
        rules = [
            f"start: /[ \\t\\n]*/ {lark_literal(CALLS_BEGIN)} call "
            f"({lark_literal(chr(10))}? call)* {lark_literal(CALLS_END)}",
            f"call: {calls}",
        ]
        for index, (name, grammar) in enumerate(tool_grammars(tools).items()):
            head = lark_literal(f"{CALL_BEGIN}function{SEP}{name}\n```json\n")
            tail = lark_literal(f"\n```{CALL_END}")
            rules.append(f"call_{index}: {head} args_{index} {tail}")
            rules.append(f"args_{index}: {grammar.json_rule()}")
        return "\n".join(rules)

    def single_grammar(self, tools: list[ToolSpec]) -> str | None:
        """None: R1's calls block is the model's own way for one call or several."""
        return None

    def lone_call(self, call_text: str) -> bool:
        """False: see `single_grammar`."""
        return False

    def text_grammar(self) -> str:
        """Text that cannot open a calls block."""
        return "start: /[ \\t\\n]*[^<][^\\x00]*/"

    def parse(self, text: str, tools: list[ToolSpec], *, first_id: int) -> ParsedCalls:
        """Calls inside the markers; the text outside them is the content."""
        calls: list[ToolCall] = []
        invalid: list[str] = []
        for block in _BLOCK.finditer(text):
            for match in _CALL.finditer(block.group(0)):
                try:
                    arguments = json.loads(match.group("arguments"))
                except json.JSONDecodeError:
                    invalid.append(f"The arguments of {match.group('name')!r} are not valid JSON.")
                    continue
                payload = {"name": match.group("name").strip(), "arguments": arguments}
                call, problem = validate_call(payload, tools, f"call_{first_id + len(calls)}")
                if call is not None:
                    calls.append(call)
                elif problem is not None:
                    invalid.append(problem)
        content = _BLOCK.sub("", text).strip()
        return ParsedCalls(calls, invalid, content)


def _tools_text(tools: list[ToolSpec]) -> str:
    lines = ["", "", "You have access to the following tools:"]
    for spec in tools:
        lines.append(f"- {spec.name}: {spec.description}")
        lines.append(f"  Parameters (JSON Schema): {json.dumps(spec.parameters)}")
    example = f"{CALL_BEGIN}function{SEP}TOOL_NAME\n```json\n{{ARGUMENTS AS JSON}}\n```{CALL_END}"
    lines += [
        "",
        "To call tools, after your reasoning write exactly:",
        CALLS_BEGIN + example + CALLS_END,
    ]
    return "\n".join(lines)
