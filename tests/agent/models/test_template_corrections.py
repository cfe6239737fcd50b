"""Known slips in shipped chat templates are corrected before the model sees the prompt."""

from __future__ import annotations

from pathlib import Path

from llama_cpp import Llama

from verity import Message
from verity.models._template import ChatTemplate
from verity.tools.builtin.calculator import calculator

CORRECT = '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}'
DOUBLED = '{{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}}'
"""How Qwen2.5-Coder-1.5B-Instruct's template (the demo model's) writes the call example."""


def test_doubled_braces_in_the_call_example_are_shown_to_the_model_as_one_pair(
    embedded_path: Path,
) -> None:
    llm = Llama(str(embedded_path), vocab_only=True, verbose=False)
    source = llm.metadata["tokenizer.chat_template"]
    llm.close()
    assert CORRECT in source  # the embedded 0.5B's template has it right
    messages = [Message(role="user", content="What is 2 + 3?")]

    as_shipped = ChatTemplate(source).render(messages, [calculator.spec])
    with_slip = ChatTemplate(source.replace(CORRECT, DOUBLED)).render(messages, [calculator.spec])

    assert with_slip == as_shipped
    assert '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n' in with_slip
    assert "{{" not in with_slip
