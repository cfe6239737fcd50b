"""One blocking completion on a llama.cpp context: KV prefix reuse, `<think>`, lazy constraint.

Runs in a worker thread. The flow per token: sample (with the grammar once a call has started),
evaluate, and while the visible content is still undecided ask the tool-call format whether a
call is starting. When it is, generation rolls back to the start of the content and continues
under the grammar on the same KV cache, so the call is constrained from its first token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.from_thread

from agent.models._sampling import TokenSampler
from agent.models.formats.base import CallStart, ToolCallFormat

__all__ = ["Completion", "GenerationRequest", "generate"]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass
class GenerationRequest:
    """What to generate."""

    prompt_tokens: list[int]
    max_tokens: int
    grammar: str | None
    """GBNF for the constrained part (tool calls, or plain text); None for free generation."""
    constrain_from_start: bool
    """Constrain from the first content token instead of waiting for a call to start."""
    call_format: ToolCallFormat
    allow_call: Callable[[], bool] | None = None
    """Asked once a call starts; False switches to `text_grammar` (the relevance gate)."""
    text_grammar: str | None = None
    prompt_opens_think: bool = False
    """The template already wrote `<think>` into the prompt (R1 distills, QwQ)."""
    max_thinking_tokens: int | None = None


@dataclass
class Completion:
    """What was generated, with the counters that prove the KV cache was reused."""

    text: str = ""
    """Visible content: everything after the reasoning."""
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


def prefill(llm: Any, tokens: list[int]) -> int:
    """Evaluate `tokens`, reusing the longest prefix already in the KV cache.

    Returns how many tokens were evaluated. At least one is, to refresh the logits.
    """
    cached = llm.input_ids[: llm.n_tokens].tolist()
    common = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        common += 1
    common = min(common, len(tokens) - 1)
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
    """Generate one assistant turn. Checks for cancellation of the calling task every token."""
    started = time.perf_counter()
    prompt = request.prompt_tokens
    completion = Completion(prompt_tokens_evaluated=prefill(llm, prompt))
    decode_started = time.perf_counter()
    completion.prefill_s = decode_started - started
    decoder = _Decoder(llm, request.prompt_opens_think)
    generated: list[int] = []
    decision: CallStart = "undecided" if request.grammar else "text"
    completion.finish_reason = "length"
    thinking_tokens = 0
    while len(generated) < request.max_tokens:
        anyio.from_thread.check_cancelled()
        token = sampler.sample()
        completion.completion_tokens += 1
        if sampler.is_eog(token):
            completion.finish_reason = "stop"
            break
        generated.append(token)
        llm.eval([token])
        decoder.push([token], len(generated))
        if decoder.thinking:
            thinking_tokens += 1
            if request.max_thinking_tokens and thinking_tokens >= request.max_thinking_tokens:
                closing = llm.tokenize(f"\n{THINK_CLOSE}\n\n".encode(), add_bos=False, special=True)
                generated.extend(closing)
                llm.eval(closing)
                decoder.push(closing, len(generated))
            continue
        if decision == "undecided" and decoder.content_start is not None:
            decision = (
                "call"
                if request.constrain_from_start
                else request.call_format.call_start(decoder.content)
            )
            if decision == "call":
                del generated[decoder.content_start :]
                decoder.truncate(bytes(llm.detokenize(generated, special=True)))
                _rollback(llm, prompt + generated, len(prompt) + len(generated))
                refused = request.allow_call is not None and not request.allow_call()
                completion.call_refused = refused
                sampler.use_grammar(request.text_grammar if refused else request.grammar)
    completion.decode_s = time.perf_counter() - decode_started
    completion.raw = decoder.text
    completion.reasoning, completion.text = decoder.split()
    return completion
