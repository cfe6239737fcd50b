"""The embedded backend: a GGUF model in-process through llama-cpp-python."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from verity.errors import ModelError, UserError
from verity.messages import Message, ModelResponse, ToolGrammar, Usage
from verity.models._context import llama_on_own_context
from verity.models._generation import GenerationRequest, generate
from verity.models._llama_setup import (
    check_gguf_file,
    llama_kwargs,
    warn_if_kv_cache_quantised,
    warn_if_no_gpu_offload,
)
from verity.models._relevance import RelevanceGate
from verity.models._sampling import TokenSampler
from verity.models._template import ChatTemplate
from verity.models.base import DeltaKind, ToolChoice
from verity.models.formats import HermesFormat, ToolCallFormat, select_format
from verity.models.formats.base import tool_grammars
from verity.models.grammar import grammar_tokenizer, validate_lark
from verity.settings import ModelSettings
from verity.tools.base import ToolSpec

__all__ = ["LlamaCppModel", "check_gguf_file", "llama_kwargs"]

_log = logging.getLogger("verity.models")

_SAMPLING_FIELDS = {"temperature", "top_p", "top_k", "min_p", "seed", "max_tokens",
                    "max_thinking_tokens"}  # fmt: skip


class LlamaCppModel:
    """A GGUF model run in-process, with grammar-constrained tool calls and KV prefix reuse.

    One instance holds one llama.cpp context; concurrent runs sharing it are serialised.

    Args:
        model_path: The GGUF file.
        settings: How to load and sample it.
        call_format: The tool-call format; chosen from the GGUF's chat template when not given.
        name: The name traces and progress show (default: the file name without extension).
        on_delta: Called with each new piece of reasoning or answer text as it is generated,
            in the generating thread; never with tool-call text.
        on_load: Called with the function that loads the weights, to call it (e.g. while
            showing progress); it returns what that function returns.
    """

    def __init__(
        self,
        model_path: str | Path,
        settings: ModelSettings | None = None,
        *,
        call_format: ToolCallFormat | None = None,
        name: str | None = None,
        on_delta: Callable[[DeltaKind, str], None] | None = None,
        on_load: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self.path = Path(model_path)
        self._name = name or self.path.stem
        self.on_delta = on_delta
        self._on_load = on_load
        check_gguf_file(self.path)
        self.settings = settings or ModelSettings()
        warn_if_kv_cache_quantised(self.settings)
        self._chosen_format = call_format
        self.call_format: ToolCallFormat = call_format or HermesFormat()
        """The tool-call format; chosen from the GGUF's chat template when not given."""
        self._llm: Any = None
        self._template: ChatTemplate | None = None
        self._bos_token = ""
        self._add_bos = False
        self._gate: RelevanceGate | None = None
        self._lock = anyio.Lock()
        self._call_ids = itertools.count()
        self._tokenizers: dict[str, Any] = {}
        """llguidance's tokenizer, built on first use; shared with `with_sampling` twins."""
        self._contexts: list[LlamaCppModel] = []
        """Models on contexts of their own that share these weights; closed before them."""
        self._weights_of: LlamaCppModel | None = None
        """For a model on a context of its own: the model whose weights it uses."""

    @property
    def name(self) -> str:
        """The name given, else the file name without its extension."""
        return self._name

    def describe(self) -> dict[str, Any]:
        """What the trace records about this model: file, tool-call format, every setting."""
        return {
            "backend": "llama.cpp",
            "name": self.name,
            "path": str(self.path),
            "call_format": type(self.call_format).__name__,
            "settings": self.settings.model_dump(mode="json"),
        }

    @property
    def llama(self) -> Any:
        """The loaded `llama_cpp.Llama` (loads it on first use)."""
        return self._load()

    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        if self._weights_of is not None:
            return self._load_own_context(self._weights_of)
        import llama_cpp  # heavy native import: only when a model is really used

        warn_if_no_gpu_offload(self.settings, supported=llama_cpp.llama_supports_gpu_offload())

        def load() -> Any:
            return llama_cpp.Llama(str(self.path), **llama_kwargs(self.settings))

        try:
            self._llm = self._on_load(load) if self._on_load else load()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp could not load {str(self.path)!r} ({exc}). The file may be truncated "
                "or corrupt, or made for a newer llama.cpp: check its size and checksum."
            ) from None
        metadata = self._llm.metadata
        source = metadata.get("tokenizer.chat_template")
        if not source:
            raise ModelError(f"{self.path.name} has no chat template in its GGUF metadata.")
        bos_token = self._token_text(metadata, "tokenizer.ggml.bos_token_id")
        self._template = ChatTemplate(
            source,
            bos_token=bos_token,
            eos_token=self._token_text(metadata, "tokenizer.ggml.eos_token_id"),
        )
        self._bos_token = bos_token
        self._add_bos = str(metadata.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
        if self._chosen_format is None:
            self.call_format = select_format(source, bos_token=bos_token)
        if self.settings.relevance_gate:
            self._gate = RelevanceGate(
                self._llm, self._template, threshold=self.settings.relevance_threshold
            )
        return self._llm

    def _gate_for(
        self, messages: list[Message], offered: list[ToolSpec], tool_choice: ToolChoice
    ) -> Callable[[], bool] | None:
        gate = self._gate
        if gate is None or tool_choice != "auto" or not offered:
            return None
        return lambda: gate.allows_call(messages, offered)

    def _grammar(
        self, tools: list[ToolSpec], offered: list[ToolSpec]
    ) -> tuple[str | None, list[ToolGrammar]]:
        """The grammar for this turn, and the offered tools whose grammar is not exact.

        Never fails: a grammar llguidance refuses for this vocabulary is rebuilt with every
        tool's arguments as any JSON object, and without any grammar if even that is refused
        (the calls are validated after generation in every case).
        """
        if not self.settings.constrain_tool_calls or not tools:
            return None, []
        if not offered:
            return self.call_format.text_grammar(), []
        notes = [
            ToolGrammar(tool=name, level=grammar.level, dropped=list(grammar.dropped))
            for name, grammar in tool_grammars(offered).items()
            if grammar.level != "exact"
        ]
        grammar = self.call_format.grammar(offered)
        problem = validate_lark(self._tokenizer(), grammar)
        if problem is None:
            return grammar, notes
        loose = [dataclasses.replace(spec, parameters={"type": "object"}) for spec in offered]
        _log.warning("the tool-call grammar was refused (%s); calls are constrained loosely",
                     problem)  # fmt: skip
        notes = [ToolGrammar(tool=spec.name, level="any", dropped=["*"]) for spec in offered]
        grammar = self.call_format.grammar(loose)
        if validate_lark(self._tokenizer(), grammar) is None:
            return grammar, notes
        return None, notes

    def _tokenizer(self) -> Any:
        if "grammar" not in self._tokenizers:
            self._tokenizers["grammar"] = grammar_tokenizer(self._load()._model.vocab)
        return self._tokenizers["grammar"]

    def _token_text(self, metadata: dict[str, str], key: str) -> str:
        if key not in metadata:
            return ""
        token = int(metadata[key])
        return bytes(self._llm.detokenize([token], special=True)).decode("utf-8", errors="ignore")

    def with_sampling(self, **changes: Any) -> LlamaCppModel:
        """This model with other sampling settings (seed, temperature, ...), sharing the loaded
        weights, context and lock: independent samples for consensus without a second copy.

        Loads the model first if it is not loaded yet.

        Raises:
            UserError: a change names a load-time setting (those need their own instance).
        """
        load_time = set(changes) - _SAMPLING_FIELDS
        if load_time:
            raise UserError(
                f"with_sampling() changes sampling settings only, not {sorted(load_time)}.",
                field="settings",
            )
        try:
            settings = ModelSettings.model_validate(self.settings.model_dump() | changes)
        except ValueError as exc:
            raise UserError(f"Invalid sampling setting: {exc}", field="settings") from None
        self._load()
        twin = copy.copy(self)
        twin.settings = settings
        return twin

    def with_own_context(self, *, n_ctx: int | None = None) -> LlamaCppModel:
        """This model on a llama.cpp context of its own, sharing the loaded weights.

        A verifier judges on it so that the run's KV cache survives the verdict: the run's next
        step evaluates only its new tokens. The context is made on first use and lives until
        this model is closed.
        """
        twin = copy.copy(self)
        twin.settings = self.settings.model_copy(update={"n_ctx": n_ctx or self.settings.n_ctx})
        twin._llm = None
        twin._gate = None
        twin.on_delta = None  # what the verifier writes is not the answer being streamed
        twin._lock = anyio.Lock()
        twin._contexts = []
        twin._weights_of = self
        self._contexts.append(twin)
        return twin

    def _load_own_context(self, owner: LlamaCppModel) -> Any:
        llm = owner._load()
        self._template, self._bos_token, self._add_bos = (
            owner._template,
            owner._bos_token,
            owner._add_bos,
        )
        if self._chosen_format is None:
            self.call_format = owner.call_format
        self._llm = llama_on_own_context(llm, n_ctx=self.settings.n_ctx)
        return self._llm

    def close(self) -> None:
        """Free the model and its context (a model on its own context frees only that)."""
        for twin in self._contexts:
            twin.close()
        self._contexts.clear()
        if self._weights_of is not None:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
            return
        if self._gate is not None:
            self._gate.close()
            self._gate = None
        if self._llm is not None:
            self._tokenizers.clear()  # it points into the model's vocabulary
            self._llm.close()
            self._llm = None

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        """Generate the next assistant turn in a worker thread.

        Raises:
            ModelError: the model failed to load, or the prompt does not fit the context.
        """
        async with self._lock:
            return await anyio.to_thread.run_sync(self._respond, messages, tools, tool_choice)

    def _respond(
        self, messages: list[Message], tools: list[ToolSpec], tool_choice: ToolChoice
    ) -> ModelResponse:
        llm = self._load()
        assert self._template is not None
        offered = _offered_tools(tools, tool_choice)
        # Tools stay in the prompt even when none may be called, so the KV prefix stays valid.
        prompt = self.call_format.render(self._template, messages, tools)
        # Templates that write the BOS text get none added; the others get the model's own.
        add_bos = self._add_bos and not (self._bos_token and prompt.startswith(self._bos_token))
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        room = self.settings.n_ctx - len(tokens)
        if room < 16:
            raise ModelError(
                f"The conversation needs {len(tokens)} tokens but the context holds "
                f"{self.settings.n_ctx}. Raise n_ctx or shorten the task and tool outputs."
            )
        grammar, grammars = self._grammar(tools, offered)
        request = GenerationRequest(
            prompt_tokens=tokens,
            max_tokens=min(self.settings.max_tokens, room),
            grammar=grammar,
            constrain_from_start=tool_choice != "auto",
            allow_call=self._gate_for(messages, offered, tool_choice),
            text_grammar=self.call_format.text_grammar(),
            call_format=self.call_format,
            prompt_opens_think=prompt.rstrip().endswith("<think>"),
            max_thinking_tokens=self.settings.max_thinking_tokens,
            on_delta=self.on_delta,
        )
        sampler = TokenSampler(
            llm,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            top_k=self.settings.top_k,
            min_p=self.settings.min_p,
            seed=self.settings.seed,
            tokenizer=self._tokenizer() if grammar is not None else None,
        )
        try:
            completion = generate(llm, sampler, request)
        finally:
            sampler.close()
        if sampler.abandoned is not None:
            _log.warning("constrained decoding stopped early (%s); the call is validated anyway",
                         sampler.abandoned)  # fmt: skip
        content, calls, invalid = completion.text, [], []
        # Constrained decoding: calls come only from the part written under the grammar (JSON
        # in the text before it is text). Free generation (a baseline): from anywhere.
        constrained = self.settings.constrain_tool_calls
        source = completion.call_text if constrained else completion.text
        if offered and source is not None and not completion.call_refused:
            parsed = self.call_format.parse(source, offered, first_id=next(self._call_ids))
            calls, invalid = parsed.calls, parsed.invalid
            content = _joined(completion.text, parsed.content) if constrained else parsed.content
            for _ in calls[1:]:
                next(self._call_ids)
        elif completion.call_text is not None:  # the grammar was the plain-text one
            content = _joined(completion.text, completion.call_text.strip())
        return ModelResponse(
            content=content,
            reasoning=completion.reasoning,
            tool_calls=calls,
            invalid_calls=invalid,
            raw=completion.raw,
            finish_reason="tool_calls" if calls else completion.finish_reason,  # type: ignore[arg-type]
            usage=Usage(
                prompt_tokens=len(tokens),
                prompt_tokens_evaluated=completion.prompt_tokens_evaluated,
                completion_tokens=completion.completion_tokens,
                duration_s=completion.prefill_s + completion.decode_s,
                prefill_s=completion.prefill_s,
                decode_s=completion.decode_s,
            ),
            model=self.name,
            tool_grammars=grammars,
        )


def _joined(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def _offered_tools(tools: list[ToolSpec], tool_choice: ToolChoice) -> list[ToolSpec]:
    if tool_choice == "none":
        return []
    if tool_choice in ("auto", "required"):
        return tools
    chosen = [spec for spec in tools if spec.name == tool_choice]
    if not chosen:
        raise UserError(f"tool_choice names {tool_choice!r}, which is not an offered tool.")
    return chosen
