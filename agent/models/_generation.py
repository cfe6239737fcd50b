"""One blocking completion on a llama.cpp context: KV prefix reuse, `<think>`, lazy constraint.

Runs in a worker thread. The flow per token: sample (with the grammar once a call has started),
evaluate, and while the visible content is still undecided ask the tool-call format whether a
call is starting. When it is, generation rolls back to the start of the content and continues
under the grammar on the same KV cache, so the call is constrained from its first token. A call
that opens after some text is handled the same way: generation rolls back to the token boundary
before its opening marker, re-evaluates the part of that token that came before the marker, and
writes the call under the grammar. Calls are only ever read from the constrained part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from verity.models._native import GenerationStopped
from verity.models._repetition import MIN_CALL_PERIOD, repeated_unit
from verity.models._sampling import TokenSampler
from verity.models._stream import TextStream
from verity.models.base import DeltaKind
from verity.models.formats.base import CallStart, ToolCallFormat
from verity.models.grammar import GrammarError

if TYPE_CHECKING:
    from verity.models._prefix_cache import PrefixCache

__all__ = [
    "THINK_CLOSE",
    "THINK_OPEN",
    "Completion",
    "GenerationRequest",
    "common_length",
    "generate",
]

_MARKER_REACH = 64
"""Characters of already searched content searched again, for a call marker still being written."""

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass
class GenerationRequest:
    """What to generate."""

    prompt_tokens: list[int]
    max_tokens: int
    grammar: str | None
    """Lark grammar for the constrained part (tool calls, or plain text); None: free generation."""
    constrain_from_start: bool
    """Constrain from the first content token instead of waiting for a call to start."""
    call_format: ToolCallFormat
    allow_call: Callable[[], bool] | None = None
    """Asked once a call starts; False switches to `text_grammar` (the relevance gate)."""
    text_grammar: str | None = None
    single_grammar: str | None = None
    """Lark grammar for a call written again when `grammar` gave a list of one (`lone_call`)."""
    prompt_opens_think: bool = False
    """The template already wrote `<think>` into the prompt (R1 distills, QwQ)."""
    max_thinking_tokens: int | None = None
    on_delta: Callable[[DeltaKind, str], None] | None = None
    """Called in the generating thread with each new piece of reasoning or answer text."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to end the generation at the next token (GenerationStopped)."""
    prefix_length: int = 0
    """Leading prompt tokens that every run with these tools shares (system prompt, tools)."""
    prefix_cache: PrefixCache | None = None
    """Where the state after those tokens is kept between runs; None: not kept."""


@dataclass
class Completion:
    """What was generated, with the counters that prove the KV cache was reused."""

    text: str = ""
    """Visible content after the reasoning, without the constrained calls."""
    call_text: str | None = None
    """What was written under the call grammar; None when no call started (or one was
    refused)."""
    reasoning: str | None = None
    raw: str = ""
    """Everything generated, exactly as it will be rendered back."""
    call_refused: bool = False
    """A call started but the relevance gate refused it: the text holds no call."""
    finish_reason: str = "stop"
    prompt_tokens_evaluated: int = 0
    completion_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0


def prefill(
    llm: Any, tokens: list[int], *, prefix_length: int = 0, cache: PrefixCache | None = None
) -> int:
    """Evaluate `tokens`, reusing the longest prefix already in the KV cache.

    The first `prefix_length` tokens (system prompt and tools) are evaluated on their own,
    so that their state is the same whether it was computed now or restored: when the KV
    cache does not hold them, they are restored from `cache` if it has them, else evaluated
    and saved to it.

    Returns how many tokens were evaluated. At least one is, to refresh the logits.
    """
    common = min(common_length(llm.input_ids[: llm.n_tokens].tolist(), tokens), len(tokens) - 1)
    evaluated = 0
    if common < prefix_length < len(tokens):
        prefix = tokens[:prefix_length]
        if cache is not None and cache.restore(llm, prefix):
            common = prefix_length
        else:
            common = min(common, llm.n_tokens)  # a refused restore leaves the cache empty
            evaluated = _evaluate_from(llm, prefix, common)
            common = prefix_length
            if cache is not None:
                cache.save(llm, prefix)
    return evaluated + _evaluate_from(llm, tokens, common)


def common_length(cached: list[int], tokens: list[int]) -> int:
    """How many leading tokens the two lists share."""
    common = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        common += 1
    return common


def _evaluate_from(llm: Any, tokens: list[int], common: int) -> int:
    """Evaluate `tokens[common:]` after the `common` tokens the KV cache holds; how many."""
    if common == 0 or not llm._ctx.kv_cache_seq_rm(-1, common, -1):
        llm.reset()
        common = 0
    llm.n_tokens = common
    llm.eval(tokens[common:])
    return len(tokens) - common


def _rollback(llm: Any, tokens: list[int], keep: int) -> None:
    """Drop everything after `tokens[:keep]` from the cache and refresh the logits there."""
    llm._ctx.kv_cache_seq_rm(-1, keep - 1, -1)
    llm.n_tokens = keep - 1
    llm.eval([tokens[keep - 1]])


class _Decoder:
    """Accumulates generated text and finds where the reasoning ends and the content starts."""

    def __init__(self, llm: Any, prompt_opens_think: bool) -> None:
        self._llm = llm
        self._bytes = b""
        self._opened = prompt_opens_think
        self.thinking = prompt_opens_think
        self.content_start: int | None = None
        """Index of the first content token, once known."""
        self._content_offset = 0

    @property
    def text(self) -> str:
        return self._bytes.decode("utf-8", errors="ignore")

    @property
    def content(self) -> str:
        return self.text[self._content_offset :]

    @property
    def opened(self) -> bool:
        """A `<think>` block was opened, by the prompt or by the model."""
        return self._opened

    def reasoning_so_far(self) -> tuple[str, bool]:
        """The reasoning written so far, and whether its block is closed."""
        reasoning, close, _ = self.text.lstrip().removeprefix(THINK_OPEN).partition(THINK_CLOSE)
        return reasoning, bool(close)

    @property
    def content_offset(self) -> int:
        """Character index in `text` where the content starts (0 until known)."""
        return self._content_offset

    def push(self, tokens: list[int], generated_count: int) -> None:
        """Add the text of `tokens`; `generated_count` counts them already."""
        self._bytes += bytes(self._llm.detokenize(tokens, special=True))
        if self.content_start is not None:
            return
        text = self.text
        stripped = text.lstrip()
        if not self._opened and stripped.startswith(THINK_OPEN):
            self._opened = self.thinking = True
        if THINK_CLOSE in text and (self._opened or stripped.startswith(THINK_CLOSE)):
            self.thinking = False
            self._start_content(generated_count, len(text))
        elif not self._opened and not _could_open_think(stripped):
            self._start_content(0, 0)

    def truncate(self, raw_bytes: bytes) -> None:
        self._bytes = raw_bytes

    def _start_content(self, token_index: int, char_offset: int) -> None:
        self.content_start = token_index
        self._content_offset = char_offset

    def split(self) -> tuple[str | None, str]:
        """Reasoning and visible content of the finished generation."""
        text = self.text
        if THINK_CLOSE in text and (self._opened or text.lstrip().startswith(THINK_CLOSE)):
            reasoning, _, content = text.partition(THINK_CLOSE)
            return reasoning.replace(THINK_OPEN, "", 1).strip(), content.strip()
        if self._opened:
            return text.replace(THINK_OPEN, "", 1).strip(), ""
        return None, text.strip()


def _could_open_think(stripped: str) -> bool:
    return THINK_OPEN.startswith(stripped) or THINK_CLOSE.startswith(stripped)


def generate(llm: Any, sampler: TokenSampler, request: GenerationRequest) -> Completion:
    """Generate one assistant turn.

    Raises:
        GenerationStopped: `request.stop` was set (checked before every token).
    """
    started = time.perf_counter()
    prompt = request.prompt_tokens
    evaluated = prefill(
        llm, prompt, prefix_length=request.prefix_length, cache=request.prefix_cache
    )
    completion = Completion(prompt_tokens_evaluated=evaluated)
    decode_started = time.perf_counter()
    completion.prefill_s = decode_started - started
    decoder = _Decoder(llm, request.prompt_opens_think)
    generated: list[int] = []
    decision: CallStart = "undecided" if request.grammar else "text"
    look_for_later_calls = bool(request.grammar) and not request.constrain_from_start
    call_at: int | None = None
    call_tokens_at = 0  # index in `generated` where the call starts
    single = request.single_grammar is None  # whether the call is final as it is written
    scanned = 0  # content before this index was searched for a later call already
    completion.finish_reason = "length"
    thinking_tokens = 0
    stream = TextStream(request.on_delta) if request.on_delta else None
    while len(generated) < request.max_tokens:
        if request.stop.is_set():
            raise GenerationStopped
        token = sampler.sample()
        completion.completion_tokens += 1
        if sampler.is_eog(token):
            completion.finish_reason = "stop"
            break
        generated.append(token)
        llm.eval([token])
        decoder.push([token], len(generated))
        if _looping(generated, call_tokens_at if call_at is not None else None):
            completion.finish_reason = "repetition"  # a loop: it would only go on repeating
            break
        if decoder.thinking:
            thinking_tokens += 1
            if request.max_thinking_tokens and thinking_tokens >= request.max_thinking_tokens:
                closing = llm.tokenize(f"\n{THINK_CLOSE}\n\n".encode(), add_bos=False, special=True)
                generated.extend(closing)
                llm.eval(closing)
                decoder.push(closing, len(generated))
            _pass_on(stream, decoder, "undecided", hold_markers=False)
            continue
        if call_at is not None and not single and b"]" in llm.detokenize([token]):
            if request.call_format.lone_call(decoder.text[call_at:]):
                # One call is enough: written again, the model's own way.
                single = True
                _rewind(llm, prompt, generated, decoder, call_tokens_at, b"")
                _use_single_grammar(sampler, request)
        if decision == "undecided" and decoder.content_start is not None:
            decision = (
                "call"
                if request.constrain_from_start
                else request.call_format.call_start(decoder.content)
            )
            if decision == "call":
                assert decoder.content_start is not None
                _rewind(llm, prompt, generated, decoder, decoder.content_start, b"")
                call_at = _start_call(sampler, request, completion, len(decoder.text))
                call_tokens_at = len(generated)
        elif decision == "text" and look_for_later_calls:
            content, start = decoder.content, scanned
            found = request.call_format.find_call(content[start:])
            scanned = max(0, len(content) - _MARKER_REACH)
            if found is not None:
                before = decoder.text[: decoder.content_offset + start + found].encode("utf-8")
                keep = _tokens_within(llm, generated, len(before))
                _rewind(llm, prompt, generated, decoder, keep, before)
                decision = "call"
                call_at = _start_call(sampler, request, completion, len(decoder.text))
                call_tokens_at = len(generated)
        _pass_on(stream, decoder, decision, hold_markers=look_for_later_calls)
    completion.decode_s = time.perf_counter() - decode_started
    completion.raw = decoder.text
    completion.reasoning, content = decoder.split()
    if call_at is None:
        completion.text = content
    else:
        completion.text = decoder.text[decoder.content_offset : call_at].strip()
        completion.call_text = decoder.text[call_at:]
    if stream is not None:
        stream.reasoning(completion.reasoning or "", final=True)
        stream.content(completion.text, hold_markers=False, final=True)
    return completion


def _looping(generated: list[int], call_from: int | None) -> bool:
    """Whether the generation ends in a loop: the same text over and over, or, inside a call
    (from `call_from`), the same calls written again."""
    if call_from is None:
        return repeated_unit(generated) is not None
    calls, shortest = generated[call_from:], MIN_CALL_PERIOD
    loop = repeated_unit(calls, min_repeats=2, min_period=shortest, min_span=2 * shortest)
    return loop is not None


def _pass_on(
    stream: TextStream | None, decoder: _Decoder, decision: CallStart, *, hold_markers: bool
) -> None:
    """Stream the new reasoning, and the new answer once it is known not to be a call."""
    if stream is None:
        return
    if decoder.opened:
        reasoning, closed = decoder.reasoning_so_far()
        stream.reasoning(reasoning, final=closed)
    if decision == "text" and decoder.content_start is not None:
        stream.content(decoder.content, hold_markers=hold_markers)


def _start_call(
    sampler: TokenSampler, request: GenerationRequest, completion: Completion, at: int
) -> int | None:
    """Switch to the call grammar (or, if the gate refuses, to plain text); where the call
    starts, or None when refused."""
    refused = request.allow_call is not None and not request.allow_call()
    completion.call_refused = refused
    try:
        sampler.use_grammar(request.text_grammar if refused else request.grammar)
    except GrammarError as exc:  # checked before generation; free text is the safe fallback
        sampler.abandoned = str(exc)
    return None if refused else at


def _use_single_grammar(sampler: TokenSampler, request: GenerationRequest) -> None:
    """Constrain a call written again alone; should llguidance refuse that grammar (it was
    checked before generation), the list is written again under `grammar`."""
    for grammar in (request.single_grammar, request.grammar):
        try:
            sampler.use_grammar(grammar)
            return
        except GrammarError as exc:
            sampler.abandoned = str(exc)


def _tokens_within(llm: Any, generated: list[int], byte_count: int) -> int:
    """How many leading tokens of `generated` fit entirely within its first `byte_count` bytes."""
    length = 0
    for index, token in enumerate(generated):
        length += len(llm.detokenize([token], special=True))
        if length > byte_count:
            return index
    return len(generated)


def _rewind(
    llm: Any,
    prompt: list[int],
    generated: list[int],
    decoder: _Decoder,
    keep: int,
    text_before: bytes,
) -> None:
    """Keep `generated[:keep]`, then re-evaluate whatever of `text_before` those tokens do not
    cover (the start of a token that also held a call's opening), as tokens of their own."""
    del generated[keep:]
    kept = bytes(llm.detokenize(generated, special=True))
    _rollback(llm, prompt + generated, len(prompt) + len(generated))
    rest = text_before[len(kept) :] if text_before.startswith(kept) else b""
    if rest:
        extra = llm.tokenize(rest, add_bos=False, special=False)
        generated.extend(extra)
        llm.eval(extra)
    decoder.truncate(bytes(llm.detokenize(generated, special=True)))
