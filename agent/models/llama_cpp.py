"""The embedded backend: a GGUF model in-process through llama-cpp-python."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from verity.errors import ModelError, UserError
from verity.messages import Message, ModelResponse, ToolGrammar, Usage
from verity.models._generation import (
    THINK_CLOSE,
    THINK_OPEN,
    GenerationRequest,
    generate,
)
from verity.models._llama_setup import (
    check_gguf_file,
    fit_context_size,
    llama_kwargs,
    warn_if_kv_cache_quantised,
)
from verity.models._loaded import Loaded, NativeState, load_model, on_own_context
from verity.models._native import GenerationStopped
from verity.models._overflow import overflow_message
from verity.models._prefix_cache import PrefixCache, prefix_cache_for, shared_prefix_length
from verity.models._relevance import RelevanceGate
from verity.models._sampling import TokenSampler
from verity.models._template import ChatTemplate
from verity.models.base import DeltaKind, ToolChoice
from verity.models.formats import HermesFormat, ToolCallFormat, select_format
from verity.models.formats.base import tool_grammars
from verity.models.grammar import (
    VocabularyPieces,
    grammar_tokenizer,
    validate_lark,
    vocabulary_pieces,
)
from verity.settings import ModelSettings
from verity.tools.base import ToolSpec

__all__ = ["LlamaCppModel", "check_gguf_file", "llama_kwargs"]

_log = logging.getLogger("verity.models")
_VOCABULARY_BLOB = "grammar-vocabulary-v1"
"""The prefix cache's name for the vocabulary as the grammar engine reads it."""

_SAMPLING_FIELDS = {
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "max_tokens",
    "max_thinking_tokens",
}


class LlamaCppModel:
    """A GGUF model run in-process, with grammar-constrained tool calls and KV prefix reuse.

    One instance holds one llama.cpp context; concurrent runs sharing it are serialised. A
    cancelled `respond()` stops the generation at once (within a token, or a graph node of a
    prompt evaluation) and returns only after the worker thread has left llama.cpp, so the
    model stays usable and `close()` is safe.

    A conversation that ends with an assistant message is continued (`continues_answers`): the
    model goes on from that text, and the response holds the whole message, the given beginning
    included; its usage counts only the new tokens.

    Args:
        model_path: The GGUF file.
        settings: How to load and sample it.
        call_format: The tool-call format; chosen from the GGUF's chat template when not given.
        name: The name traces and progress show (default: the file name without extension).
        on_delta: Called with each new piece of reasoning or answer text as it is generated,
            in the generating thread; never with tool-call text.
        on_load: Called with the function that loads the weights, to call it (e.g. while
            showing progress); it returns what that function returns.

    Raises:
        UserError: the file is not a GGUF model, or `n_ctx` exceeds its training context.
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
        self.settings = fit_context_size(self.path, settings or ModelSettings())
        warn_if_kv_cache_quantised(self.settings)
        self._chosen_format = call_format
        self.call_format: ToolCallFormat = call_format or HermesFormat()
        """The tool-call format; chosen from the GGUF's chat template when not given."""
        self._native = NativeState()
        self._lock = anyio.Lock()
        self._call_ids = itertools.count()
        self._contexts: list[LlamaCppModel] = []
        """Models on contexts of their own that share these weights; closed before them."""
        self._weights_of: LlamaCppModel | None = None
        """For a model on a context of its own: the model whose weights it uses."""
        self._prefix: PrefixCache | None = None
        """The disk cache of evaluated prompt prefixes, made on first use."""

    continues_answers = True
    """It goes on from an assistant message that ends the conversation."""

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
        """The loaded `llama_cpp.Llama` (loads it on first use).

        Calls on it bypass the guard that keeps `close()` from freeing it under a generation.
        """
        with self._native.guard.entered(threading.Event()):
            return self._loaded().llm

    @property
    def chat_template(self) -> ChatTemplate | None:
        """The GGUF's chat template once the model is loaded, else None."""
        loaded = self._native.loaded
        return loaded.template if loaded is not None else None

    def start_loading(self) -> None:
        """Load the weights now, in a background thread, so that the first call waits for them
        less (or not at all): while the caller goes on importing, starting MCP servers, etc.
        The grammar engine's tokenizer, which calls that offer tools need, is built with them.

        The first call that needs the model waits for this load, and gets its error if it
        failed. `close()` waits for it too, then frees what it loaded. Nothing happens if the
        model is loaded or loading, or shares another model's weights.
        """
        native = self._native
        if native.loaded is not None or native.loading is not None or self._weights_of:
            return
        native.loading = stop = threading.Event()
        threading.Thread(
            target=self._load_in_background, args=(stop,), name="verity-model-load"
        ).start()  # not a daemon: the interpreter waits for it before it exits

    def _load_in_background(self, stop: threading.Event) -> None:
        native = self._native
        try:
            with native.guard.entered(stop):
                try:
                    loaded = self._loaded()
                except Exception as exc:  # noqa: BLE001 - the first caller that needs it gets it
                    native.load_error = exc
                    return
                if self.settings.constrain_tool_calls:
                    with suppress(Exception):  # the call that needs it builds it and says why
                        _tokenizer(loaded, self._prefix_cache())
        except GenerationStopped:  # closed before the load began
            pass
        finally:
            native.loading = None

    def _loaded(self) -> Loaded:
        """The loaded model; the caller holds the native guard."""
        native = self._native
        if native.loaded is None:
            failed, native.load_error = native.load_error, None
            if failed is not None:
                raise failed
            native.loaded = self._load()
        return native.loaded

    def _load(self) -> Loaded:
        owner, abort = self._weights_of, self._native.guard.abort
        if owner is not None:
            # the owner frees its weights only after this model (close() closes it first)
            with owner._native.guard.entered(threading.Event()):
                base = owner._loaded()
            if self._chosen_format is None:
                self.call_format = owner.call_format
            return on_own_context(base, n_ctx=self.settings.n_ctx, abort=abort)
        loaded = load_model(self.path, self.settings, self._on_load, abort)
        if self._chosen_format is None:
            self.call_format = select_format(loaded.template_source, bos_token=loaded.bos_token)
        return loaded

    def _prefix_cache(self) -> PrefixCache | None:
        if self._prefix is None and self.settings.prefix_cache:
            self._prefix = prefix_cache_for(self.path, self.settings)
        return self._prefix

    def _gate_for(
        self,
        gate: RelevanceGate | None,
        messages: list[Message],
        offered: list[ToolSpec],
        tool_choice: ToolChoice,
    ) -> Callable[[], bool] | None:
        if gate is None or tool_choice != "auto" or not offered:
            return None
        return lambda: gate.allows_call(messages, offered)

    def _grammar(
        self, loaded: Loaded, tools: list[ToolSpec], offered: list[ToolSpec]
    ) -> tuple[str | None, str | None, list[ToolGrammar]]:
        """The grammar for this turn, the one for a call written again alone (see
        `ToolCallFormat.single_grammar`), and the offered tools whose grammar is not exact.

        Never fails: a grammar llguidance refuses for this vocabulary is rebuilt with every
        tool's arguments as any JSON object, and without any grammar if even that is refused
        (the calls are validated after generation in every case).
        """
        if not self.settings.constrain_tool_calls or not tools:
            return None, None, []
        if not offered:
            return self.call_format.text_grammar(), None, []
        notes = [
            ToolGrammar(tool=name, level=grammar.level, dropped=list(grammar.dropped))
            for name, grammar in tool_grammars(offered).items()
            if grammar.level != "exact"
        ]
        grammar = self.call_format.grammar(offered)
        problem = validate_lark(_tokenizer(loaded, self._prefix_cache()), grammar)
        if problem is None:
            return grammar, self._single_grammar(loaded, offered), notes
        loose = [dataclasses.replace(spec, parameters={"type": "object"}) for spec in offered]
        _log.warning(
            "the tool-call grammar was refused (%s); calls are constrained loosely", problem
        )
        notes = [ToolGrammar(tool=spec.name, level="any", dropped=["*"]) for spec in offered]
        grammar = self.call_format.grammar(loose)
        if validate_lark(_tokenizer(loaded, self._prefix_cache()), grammar) is None:
            return grammar, self._single_grammar(loaded, loose), notes
        return None, None, notes

    def _single_grammar(self, loaded: Loaded, specs: list[ToolSpec]) -> str | None:
        single = self.call_format.single_grammar(specs)
        if single is None:
            return None
        if validate_lark(_tokenizer(loaded, self._prefix_cache()), single) is not None:
            return None  # the list of one stands
        return single

    def with_sampling(self, **changes: Any) -> LlamaCppModel:
        """This model with other sampling settings (seed, temperature, ...), sharing the loaded
        weights, context and lock: independent samples for consensus without a second copy.

        Loads the model first if it is not loaded yet. Closing either one frees the shared model.

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
        if self._native.loaded is None:  # once loaded, copying waits for no generation
            with self._native.guard.entered(threading.Event()):
                self._loaded()
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
        twin._native = NativeState()
        twin.on_delta = None  # what the verifier writes is not the answer being streamed
        twin._lock = anyio.Lock()
        twin._contexts = []
        twin._weights_of = self
        self._contexts.append(twin)
        return twin

    def close(self) -> None:
        """Free the model and its contexts (a model on a context of its own: only that one); a
        later call loads it again.

        Safe to call from any thread at any moment, and more than once: a generation in progress
        is stopped first (its `respond()` raises ModelError), and the memory is freed only after
        its thread has left llama.cpp. Models on contexts of their own are closed first.
        """
        for twin in self._contexts:
            twin.close()
        loading = self._native.loading
        if loading is not None:
            loading.set()  # a load that has not begun never begins; one under way is waited for
        self._native.guard.close(self._native.free)

    async def aclose(self) -> None:
        """`close()` without blocking the event loop while a generation stops."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.close)

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        """Generate the next assistant turn in a worker thread.

        Cancelling the caller stops the generation within a token (or a graph node of a prompt
        evaluation) and returns only once the worker has left llama.cpp.

        Raises:
            ModelError: the model failed to load, the prompt does not fit the context, or the
                model was closed during the generation.
        """
        async with self._lock:
            stop, done, begun = threading.Event(), threading.Event(), threading.Lock()
            try:
                return await anyio.to_thread.run_sync(
                    self._run_job,
                    messages,
                    tools,
                    tool_choice,
                    stop,
                    done,
                    begun,
                    abandon_on_cancel=True,
                )
            finally:
                # cancelled: stop the worker and wait until it is out, unless it never began (a
                # job abandoned before a worker took it is never run, so it would never be done)
                if not done.is_set() and not begun.acquire(blocking=False):
                    self._native.guard.stop(stop)
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(done.wait)

    def _run_job(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        tool_choice: ToolChoice,
        stop: threading.Event,
        done: threading.Event,
        begun: threading.Lock,
    ) -> ModelResponse:
        if not begun.acquire(blocking=False):  # its caller was cancelled before it began
            raise GenerationStopped
        try:
            with self._native.guard.entered(stop):
                return self._respond(self._loaded(), messages, tools, tool_choice, stop)
        except (GenerationStopped, RuntimeError) as exc:
            if stop.is_set():  # a cancelled caller never sees this; close() was called
                raise ModelError("The model was closed while it was generating.") from None
            raise ModelError(f"llama.cpp failed: {exc}") from None
        finally:
            done.set()

    def _respond(
        self,
        loaded: Loaded,
        messages: list[Message],
        tools: list[ToolSpec],
        tool_choice: ToolChoice,
        stop: threading.Event,
    ) -> ModelResponse:
        llm = loaded.llm
        offered = _offered_tools(tools, tool_choice)
        begun = messages[-1] if messages and messages[-1].role == "assistant" else None
        # Tools stay in the prompt even when none may be called, so the KV prefix stays valid.
        history = messages[:-1] if begun is not None else messages
        prompt = self.call_format.render(loaded.template, history, tools)
        opens_think = prompt.rstrip().endswith(THINK_OPEN)
        if begun is not None:
            prompt += _begun_text(begun)
            opens_think = _still_thinking(_begun_text(begun), opened=opens_think)
        # Templates that write the BOS text get none added; the others get the model's own.
        add_bos = loaded.add_bos and not (loaded.bos_token and prompt.startswith(loaded.bos_token))
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        room = self.settings.n_ctx - len(tokens)
        if room < 16:
            raise ModelError(self._overflow(loaded, history, tools, len(tokens)))
        grammar, single_grammar, grammars = self._grammar(loaded, tools, offered)
        prefix_length = shared_prefix_length(
            loaded.llm,
            history,
            tokens,
            add_bos=add_bos,
            render=lambda head: self.call_format.render(loaded.template, head, tools),
        )
        request = GenerationRequest(
            prompt_tokens=tokens,
            max_tokens=min(self.settings.max_tokens, room),
            grammar=grammar,
            single_grammar=single_grammar,
            constrain_from_start=tool_choice != "auto",
            allow_call=self._gate_for(loaded.gate, messages, offered, tool_choice),
            text_grammar=self.call_format.text_grammar(),
            call_format=self.call_format,
            prompt_opens_think=opens_think,
            max_thinking_tokens=self.settings.max_thinking_tokens,
            on_delta=self.on_delta,
            stop=stop,
            prefix_length=prefix_length,
            prefix_cache=self._prefix_cache(),
        )
        sampler = TokenSampler(
            llm,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            top_k=self.settings.top_k,
            min_p=self.settings.min_p,
            seed=self.settings.seed,
            tokenizer=_tokenizer(loaded, self._prefix_cache()) if grammar is not None else None,
        )
        try:
            completion = generate(llm, sampler, request)
        finally:
            sampler.close()
        if completion.finish_reason == "repetition":
            _log.warning(
                "the model %s repeated the same text over and over: its generation was stopped "
                "after %d tokens",
                self.name,
                completion.completion_tokens,
            )
        if sampler.abandoned is not None:
            _log.warning(
                "constrained decoding stopped early (%s); the call is validated anyway",
                sampler.abandoned,
            )
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
        raw, reasoning = completion.raw, completion.reasoning
        if begun is not None:
            spacing = completion.raw[: len(completion.raw) - len(completion.raw.lstrip())]
            content = begun.content + (spacing + content if content else "")
            raw = _begun_text(begun) + raw
            reasoning = reasoning or begun.reasoning
        return ModelResponse(
            content=content,
            reasoning=reasoning,
            tool_calls=calls,
            invalid_calls=invalid,
            raw=raw,
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

    def _overflow(
        self, loaded: Loaded, history: list[Message], tools: list[ToolSpec], needed: int
    ) -> str:
        def count(text: str) -> int:
            return len(loaded.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

        bare = self.call_format.render(loaded.template, history, []) if tools else None
        return overflow_message(
            needed=needed,
            n_ctx=self.settings.n_ctx,
            without_tools=needed if bare is None else count(bare),
            tools=tools,
            count=count,
        )


def _begun_text(begun: Message) -> str:
    return begun.raw if begun.raw is not None else begun.content


def _still_thinking(begun: str, *, opened: bool) -> bool:
    """Whether a `<think>` block is open at the end of an assistant message's beginning (the
    prompt itself may have opened it)."""
    if THINK_CLOSE in begun:
        return begun.rfind(THINK_OPEN) > begun.rfind(THINK_CLOSE)
    return opened or THINK_OPEN in begun


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


def _tokenizer(loaded: Loaded, cache: PrefixCache | None) -> Any:
    if "grammar" not in loaded.tokenizers:
        vocab = loaded.llm._model.vocab
        loaded.tokenizers["grammar"] = grammar_tokenizer(vocab, _vocabulary(vocab, cache))
    return loaded.tokenizers["grammar"]


def _vocabulary(vocab: Any, cache: PrefixCache | None) -> VocabularyPieces:
    """The vocabulary's pieces from the prefix cache when it holds this model's; else read (and
    kept there for the next process)."""
    stored = cache.load_blob(_VOCABULARY_BLOB) if cache is not None else None
    if stored is not None:
        with suppress(ValueError):
            pieces = VocabularyPieces.unpack(stored)
            if pieces.matches(vocab):
                return pieces
    pieces = vocabulary_pieces(vocab)
    if cache is not None:
        cache.save_blob(_VOCABULARY_BLOB, pieces.pack())
    return pieces
