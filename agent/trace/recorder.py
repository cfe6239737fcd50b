"""The hook that records every run into the trace database as it happens (design D7)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from verity.hooks import (
    ApprovalDecided,
    ModelCallEnded,
    ModelCallStarted,
    ModelPurpose,
    RunEnded,
    RunHooks,
    RunStarted,
    ToolCallEnded,
    VerdictReached,
)
from verity.messages import Message, ModelResponse, Sample, ToolCall
from verity.tools.base import ToolSpec
from verity.trace._provenance import model_sha256, versions
from verity.trace._redact import redact, redact_text
from verity.trace.store import TraceStore, Writer, index_run, now

__all__ = ["TraceRecorder"]

# Constant statement texts: sqlite3 keeps them prepared in its statement cache.
_INSERT_RUN = (
    "insert into runs (id, task, model, status, started_at, pid, process, host, config, "
    "verity_version, llama_cpp_version, model_sha256) "
    "values (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_STEP = "insert into steps (run_id, step, started_at, tools_hash) values (?, ?, ?, ?)"
_INSERT_CONTENT = "insert or ignore into contents (hash, kind, text) values (?, ?, ?)"
_INSERT_MESSAGE = (
    "insert into messages (run_id, conversation, position, step, role, content, content_hash, "
    "reasoning, tool_calls, tool_call_id, name) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SET_SYSTEM_PROMPT = "update runs set system_prompt_hash = ? where id = ?"
_INSERT_MODEL_CALL = (
    "insert into model_calls (run_id, step, model, input_tokens, input_tokens_evaluated, "
    "output_tokens, content, reasoning, raw, finish_reason, tool_calls, invalid_calls, "
    "duration_s, prefill_s, decode_s, output_tokens_per_s, created_at, purpose, conversation, "
    "messages_count, tools_hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?)"
)
_END_STEP = "update steps set outcome = ?, ended_at = ? where run_id = ? and step = ?"
_INSERT_TOOL_CALL = (
    "insert into tool_calls (run_id, step, tool_call_id, tool_name, arguments, result, "
    "is_error, duration_s, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_VERDICT = (
    "insert into verdicts (run_id, step, ok, checked, verifier, findings, feedback, "
    "confidence, scope, created_at, conclusive, resume_from) "
    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SAMPLE = (
    "insert into verdict_samples (verdict_id, run_id, step, seed, answer, normalised, agrees, "
    "input_tokens, output_tokens, sample_run_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SET_PARENT = "update runs set parent_run_id = ? where id = ?"
_INSERT_APPROVAL = (
    "insert into approvals (run_id, step, tool_name, outcome, decided_by, reason, arguments, "
    "created_at) values (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TOOL_GRAMMAR = (
    "insert into tool_grammars (run_id, step, tool_name, level, dropped, created_at) "
    "values (?, ?, ?, ?, ?, ?)"
)
_INSERT_RUN_IF_MISSING = _INSERT_RUN.replace("insert into", "insert or ignore into", 1)
_END_RUN = (
    "update runs set status = ?, answer = ?, error = ?, ended_at = ?, duration_s = ?, "
    "verified = ?, verify_rounds = ? where id = ?"
)


@dataclass
class _Conversation:
    """The messages of one conversation already stored: later calls store only what is new."""

    messages: list[Message]
    number: int
    count: int = 0
    last: Message | None = None


@dataclass
class _Run:
    started: float
    conversations: dict[ModelPurpose, _Conversation] = field(default_factory=dict)
    calls: dict[ModelPurpose, tuple[int, int, str | None]] = field(default_factory=dict)
    """Per purpose, the model call under way: its conversation, messages shown, tools hash."""
    next_conversation: int = 0
    withheld: set[str] = field(default_factory=set)
    """Tools whose withholding is recorded: gates report them at every listing."""
    grammars: set[tuple[str, str, str]] = field(default_factory=set)
    """Relaxed tool grammars recorded (tool, level, dropped): each once, when first seen."""
    start_row: tuple[Any, ...] | None = None
    """The run's row as `on_run_start` inserted it, or tried to."""
    start_recorded: bool = False


class TraceRecorder(RunHooks):
    """Records runs, steps, messages, model calls, tool calls, verdicts and approval decisions
    as they happen, one transaction per hook call.

    A failed write (the database locked by another process past the store's timeout, a full
    disk) never ends the run: the recorder stops writing and `failure` says what went wrong and
    what was not recorded, for the caller to report. The run's end is still tried once (briefly,
    inserting the run's row if its start was lost too), so a run that completed is recorded
    completed with its answer, and the row's `error` lists what is missing. A verdict's
    consensus samples go to `verdict_samples`; a sample traced as a run of its own gets the
    verified run as its `parent_run_id`.
    """

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self._error: str | None = None
        self._lost: list[str] = []
        self._runs: dict[str, _Run] = {}
        self._stored: set[str] = set()
        self._tools: tuple[tuple[int, ...], list[ToolSpec], str] | None = None

    @property
    def failure(self) -> str | None:
        """Why the trace is incomplete and what it lacks; None while every write worked."""
        if self._error is None:
            return None
        return f"{self._error}; not recorded: {_listed(self._lost)}"

    async def _write(self, function: Callable[[Writer], object], what: str) -> bool:
        """Write in one transaction; False (and `what` noted as lost) when it failed or was
        skipped after an earlier failure."""
        if self._error is None:
            try:
                await self.store.write(function)
                return True
            except (sqlite3.Error, OSError) as exc:
                self._error = f"{type(exc).__name__}: {exc}"
        self._lost.append(what)
        return False

    async def on_run_start(self, event: RunStarted) -> None:
        """Insert the run as `running`, with its process, settings and versions."""
        run_id = event.run_id
        # an approval gate may have reported withheld tools already, while the loop listed them
        self._runs.setdefault(run_id, _Run(started=0.0)).started = time.monotonic()
        config = dict(event.config or {})
        described = config.get("model")
        path = described.get("path") if isinstance(described, dict) else None
        sha256 = await anyio.to_thread.run_sync(model_sha256, path) if path else None
        found = versions()
        config["versions"] = found
        process = self.store.process
        settings = json.dumps(redact(config), default=str)
        row = (
            run_id,
            event.task,
            event.model,
            now(),
            process.pid,
            process.start,
            process.host,
            settings,
            found["verity"],
            found["llama_cpp"],
            sha256,
        )
        run = self._runs[run_id]
        run.start_row = row
        start = f"run {run_id}'s start"
        run.start_recorded = await self._write(lambda w: w.execute(_INSERT_RUN, row), start)

    async def on_model_start(self, event: ModelCallStarted) -> None:
        """Store the messages the model has not been shown before, and open the step."""
        run_id, step, messages, purpose = event.run_id, event.step, event.messages, event.purpose
        run = self._runs.setdefault(run_id, _Run(started=time.monotonic()))
        conversation = run.conversations.get(purpose)
        if not _continues(conversation, messages):
            conversation = _Conversation(messages, run.next_conversation)
            run.next_conversation += 1
            run.conversations[purpose] = conversation
        assert conversation is not None
        contents: list[tuple[str, str, str]] = []
        tools_hash = self._tools_hash(event.tools, contents)
        rows = []
        system_hash = None
        for position in range(conversation.count, len(messages)):
            message = messages[position]
            content: str | None = message.content
            content_hash = None
            if message.role == "system":  # the same long prompt in every run: stored once
                content_hash = system_hash = self._hashed(
                    message.content, "system_prompt", contents
                )
                content = None
            calls = _calls_json(message.tool_calls) if message.tool_calls else None
            rows.append(
                (
                    run_id,
                    conversation.number,
                    position,
                    step,
                    message.role,
                    content,
                    content_hash,
                    message.reasoning,
                    calls,
                    message.tool_call_id,
                    message.name,
                )
            )
        conversation.count = len(messages)
        conversation.last = messages[-1] if messages else None
        run.calls[purpose] = (conversation.number, len(messages), tools_hash)
        started = now()

        def write(w: Writer) -> None:
            if contents:
                w.executemany(_INSERT_CONTENT, contents)
            if rows:
                w.executemany(_INSERT_MESSAGE, rows)
            if purpose == "agent":
                w.execute(_INSERT_STEP, (run_id, step, started, tools_hash))
                if system_hash is not None and conversation.number == 0:
                    w.execute(_SET_SYSTEM_PROMPT, (system_hash, run_id))

        await self._write(write, f"step {step}'s {_purpose(purpose)}messages")

    async def on_model_end(self, event: ModelCallEnded) -> None:
        """Record the model call with its token counts (NULL when unknown) and timings."""
        run_id, step, response, purpose = event.run_id, event.step, event.response, event.purpose
        run = self._runs.get(run_id)
        started = run.calls.pop(purpose, None) if run else None
        number, shown, tools_hash = started or (None, None, None)
        usage = response.usage
        known = usage.tokens_known
        speed = usage.completion_tokens / usage.decode_s if known and usage.decode_s > 0 else None
        calls = _calls_json(response.tool_calls)
        row = (
            run_id,
            step,
            response.model,
            usage.prompt_tokens if known else None,
            usage.prompt_tokens_evaluated if known else None,
            usage.completion_tokens if known else None,
            response.content,
            response.reasoning,
            response.raw,
            response.finish_reason,
            calls,
            json.dumps(response.invalid_calls),
            usage.duration_s,
            usage.prefill_s,
            usage.decode_s,
            speed,
            now(),
            purpose,
            number,
            shown,
            tools_hash,
        )
        outcome = "tool_calls" if response.tool_calls else "answer"
        if response.invalid_calls and not response.tool_calls:
            outcome = "invalid_calls"
        grammars = self._new_grammars(run_id, step, response)

        def write(w: Writer) -> None:
            w.execute(_INSERT_MODEL_CALL, row)
            if grammars:
                w.executemany(_INSERT_TOOL_GRAMMAR, grammars)
            if purpose == "agent":
                w.execute(_END_STEP, (outcome, row[16], run_id, step))

        await self._write(write, f"step {step}'s {_purpose(purpose)}model call")

    async def on_tool_end(self, event: ToolCallEnded) -> None:
        """Record the tool call with its arguments, result and duration."""
        call, result = event.call, event.result
        row = (
            event.run_id,
            event.step,
            call.id,
            call.name,
            json.dumps(call.arguments),
            result.content,
            int(result.is_error),
            event.duration_s,
            now(),
        )
        what = f"step {event.step}'s call of {call.name}"
        await self._write(lambda w: w.execute(_INSERT_TOOL_CALL, row), what)

    async def on_verdict(self, event: VerdictReached) -> None:
        """Record the verdict and whether the step's answer was accepted."""
        run_id, step, verdict = event.run_id, event.step, event.verdict
        created = now()
        row = (
            run_id,
            step,
            int(verdict.ok),
            int(verdict.checked),
            verdict.verifier,
            json.dumps([f.model_dump() for f in verdict.findings]),
            verdict.feedback,
            verdict.confidence,
            verdict.scope,
            created,
            int(verdict.conclusive),
            verdict.resume_from,
        )

        def write(w: Writer) -> None:
            verdict_id = w.execute(_INSERT_VERDICT, row).lastrowid
            if verdict.samples:
                _write_samples(w, run_id, step, verdict_id, verdict.samples)
            if verdict.scope == "answer":  # a check of tool arguments leaves the step's outcome
                outcome = "accepted" if verdict.ok else "rejected"
                w.execute(_END_STEP, (outcome, created, run_id, step))

        await self._write(write, f"step {step}'s verdict")

    async def on_approval(self, event: ApprovalDecided) -> None:
        """Record a call's approval decision, and each withheld tool once per run."""
        run_id, step, decision = event.run_id, event.step, event.decision
        run = self._runs.setdefault(run_id, _Run(started=time.monotonic()))
        if decision.outcome == "withheld":
            if decision.tool in run.withheld:
                return
            run.withheld.add(decision.tool)
        arguments = None if decision.arguments is None else json.dumps(decision.arguments)
        row = (
            run_id,
            step,
            decision.tool,
            decision.outcome,
            decision.by,
            decision.reason,
            arguments,
            now(),
        )
        what = f"step {step}'s approval decision on {decision.tool}"
        await self._write(lambda w: w.execute(_INSERT_APPROVAL, row), what)

    async def on_run_end(self, event: RunEnded) -> None:
        """Close the run with its status, answer or error, and its verification outcome.

        After a failed write this is tried anyway, once and briefly: the end is what tells a
        completed run from one whose process was killed (`interrupted`).
        """
        run_id, status, error, verified = event.run_id, event.status, event.error, event.verified
        run = self._runs.pop(run_id, None)
        duration = time.monotonic() - run.started if run else None
        if self._error is not None:
            missing = f"not recorded: {_listed(self._lost)}" if self._lost else ""
            note = f"The trace is incomplete ({self._error}); {missing}"
            error = note if error is None else f"{error}\n{note}"
        row = (
            status,
            event.answer,
            redact_text(error) if error else error,
            now(),
            duration,
            None if verified is None else int(verified),
            event.verify_rounds,
            run_id,
        )
        start = run.start_row if run is not None and not run.start_recorded else None

        def write(w: Writer) -> None:
            if start is not None:
                w.execute(_INSERT_RUN_IF_MISSING, start)
            w.execute(_END_RUN, row)
            index_run(w, run_id)

        what = f"run {run_id}'s end ({status})"
        if self._error is None:
            await self._write(write, what)
            return
        try:
            wait = min(_LAST_WRITE_TIMEOUT, self.store.timeout)
            await self.store.write(write, lock_timeout=wait)
        except (sqlite3.Error, OSError):
            self._lost.append(f"{what}: it will show as interrupted")

    def _new_grammars(
        self, run_id: str, step: int, response: ModelResponse
    ) -> list[tuple[str, int, str, str, str, str]]:
        """Rows for the relaxed tool grammars this run has not recorded yet."""
        run = self._runs.setdefault(run_id, _Run(started=time.monotonic()))
        rows: list[tuple[str, int, str, str, str, str]] = []
        for grammar in response.tool_grammars:
            key = (grammar.tool, grammar.level, json.dumps(grammar.dropped))
            if key not in run.grammars:
                run.grammars.add(key)
                rows.append((run_id, step, *key, now()))
        return rows

    def _hashed(self, text: str, kind: str, contents: list[tuple[str, str, str]]) -> str:
        """The sha256 of `text`, queued for `contents` unless this recorder stored it."""
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
        if digest not in self._stored:
            self._stored.add(digest)  # after a failed write nothing more is written
            contents.append((digest, kind, text))
        return digest

    def _tools_hash(
        self, tools: Sequence[ToolSpec], contents: list[tuple[str, str, str]]
    ) -> str | None:
        """The offered tools' hash; recomputed only when the specs are other objects."""
        if not tools:
            return None
        key = tuple(map(id, tools))
        if self._tools is not None and self._tools[0] == key:
            return self._tools[2]
        text = json.dumps([dataclasses.asdict(t) for t in tools], sort_keys=True)
        digest = self._hashed(text, "tools", contents)
        self._tools = (key, list(tools), digest)  # holding the specs keeps their ids unique
        return digest


_LAST_WRITE_TIMEOUT = 5.0
"""Seconds the run's end waits for the database's lock after an earlier write failed (that one
already waited the store's whole timeout)."""


def _purpose(purpose: ModelPurpose) -> str:
    return "" if purpose == "agent" else f"{purpose} "


def _listed(lost: list[str], most: int = 8) -> str:
    """What was not recorded, in order; past `most` items, their count."""
    if len(lost) <= most:
        return ", ".join(lost)
    return ", ".join(lost[:most]) + f" and {len(lost) - most} more writes"


def _continues(conversation: _Conversation | None, messages: list[Message]) -> bool:
    """Whether `messages` is the stored conversation grown by appending (the loop's way)."""
    if conversation is None or messages is not conversation.messages:
        return False
    count = conversation.count
    return len(messages) >= count and (count == 0 or messages[count - 1] is conversation.last)


def _calls_json(calls: list[ToolCall]) -> str:
    # ToolCall.model_dump() costs more than the insert that stores it
    return json.dumps([{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls])


def _write_samples(
    w: Writer, run_id: str, step: int, verdict_id: int | None, samples: list[Sample]
) -> None:
    rows = [
        (
            verdict_id,
            run_id,
            step,
            s.seed,
            s.answer,
            s.normalised,
            int(s.agrees),
            s.input_tokens,
            s.output_tokens,
            s.run_id,
        )
        for s in samples
    ]
    w.executemany(_INSERT_SAMPLE, rows)
    w.executemany(_SET_PARENT, [(run_id, s.run_id) for s in samples if s.run_id is not None])
