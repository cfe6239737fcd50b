"""The SQLite trace store, and the hook that records every run into it (design D7)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sqlite_utils

from verity.errors import UserError
from verity.hooks import RunHooks, RunStatus
from verity.messages import Message, ModelResponse, Sample, ToolCall, Verdict
from verity.tools.approval import ApprovalDecision
from verity.tools.base import ToolResult
from verity.trace.migrations import migrate

__all__ = ["TraceRecorder", "TraceStore"]

T = TypeVar("T")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TraceStore:
    """A trace database: opened in WAL mode and migrated on open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Python opens each write transaction with BEGIN IMMEDIATE: writers queue for the lock
            # up front instead of failing with SQLITE_BUSY when they upgrade from a read.
            connection = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level="IMMEDIATE", timeout=30
            )
            self.db = sqlite_utils.Database(connection)
            self.db.enable_wal()
            migrate(self.db)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise UserError(
                f"Cannot open the trace database {str(self.path)!r}: {exc}. Choose another path "
                "with --trace-db or VERITY_TRACE_DB.",
                field="trace_db",
            ) from None
        self._lock = anyio.Lock()

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    async def write(self, function: Callable[[], T]) -> T:
        """Run a write in a worker thread, one at a time, and commit it."""

        def in_transaction() -> T:
            with self.db.conn:
                return function()

        async with self._lock:
            return await anyio.to_thread.run_sync(in_transaction)

    def runs(self, *, limit: int = 20, samples: bool = False) -> list[dict[str, Any]]:
        """The latest runs, newest first; consensus samples' own runs only with `samples`."""
        where = None if samples else "parent_run_id is null"
        return list(
            self.db.table("runs").rows_where(where, order_by="started_at desc", limit=limit)
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its steps, model calls, tool calls, verdicts and consensus samples.

        None if the run is unknown.
        """
        rows = list(self.db.table("runs").rows_where("id = ?", [run_id]))
        if not rows:
            return None
        record = dict(rows[0])
        tables = ("steps", "model_calls", "tool_calls", "verdicts", "verdict_samples", "approvals")
        for table in tables:
            record[table] = list(
                self.db.table(table).rows_where("run_id = ?", [run_id], order_by="id")
            )
        return record


class TraceRecorder(RunHooks):
    """Writes runs, steps, model calls, tool calls and verdicts as they happen.

    A verdict's consensus samples go to `verdict_samples`; a sample traced as a run of its own
    gets the verified run as its `parent_run_id`.
    """

    def __init__(self, store: TraceStore) -> None:
        self.store = store
        self._started: dict[str, datetime] = {}
        self._withheld: set[tuple[str, str]] = set()

    async def on_run_start(self, run_id: str, task: str, model: str) -> None:
        """Insert the run as `running`, so a killed process leaves it visible as unfinished."""
        self._started[run_id] = datetime.now(UTC)
        row = {"id": run_id, "task": task, "model": model, "status": "running",
               "started_at": _now()}  # fmt: skip
        await self.store.write(lambda: self.store.db.table("runs").insert(row))

    async def on_model_start(self, run_id: str, step: int, messages: list[Message]) -> None:
        """Open the step."""
        row = {"run_id": run_id, "step": step, "started_at": _now()}
        await self.store.write(lambda: self.store.db.table("steps").insert(row))

    async def on_model_end(self, run_id: str, step: int, response: ModelResponse) -> None:
        """Record the model call with its token counts and timings."""
        usage = response.usage
        row = {
            "run_id": run_id,
            "step": step,
            "model": response.model,
            "input_tokens": usage.prompt_tokens,
            "input_tokens_evaluated": usage.prompt_tokens_evaluated,
            "output_tokens": usage.completion_tokens,
            "content": response.content,
            "reasoning": response.reasoning,
            "raw": response.raw,
            "finish_reason": response.finish_reason,
            "tool_calls": json.dumps([c.model_dump() for c in response.tool_calls]),
            "invalid_calls": json.dumps(response.invalid_calls),
            "duration_s": usage.duration_s,
            "prefill_s": usage.prefill_s,
            "decode_s": usage.decode_s,
            "output_tokens_per_s": (
                usage.completion_tokens / usage.decode_s if usage.decode_s > 0 else None
            ),
            "created_at": _now(),
        }
        outcome = "tool_calls" if response.tool_calls else "answer"
        if response.invalid_calls and not response.tool_calls:
            outcome = "invalid_calls"

        def write() -> None:
            self.store.db.table("model_calls").insert(row)
            self._end_step(run_id, step, outcome)

        await self.store.write(write)

    async def on_tool_end(
        self, run_id: str, step: int, call: ToolCall, result: ToolResult, duration_s: float
    ) -> None:
        """Record the tool call with its arguments, result and duration."""
        row = {
            "run_id": run_id,
            "step": step,
            "tool_call_id": call.id,
            "tool_name": call.name,
            "arguments": json.dumps(call.arguments),
            "result": result.content,
            "is_error": int(result.is_error),
            "duration_s": duration_s,
            "created_at": _now(),
        }
        await self.store.write(lambda: self.store.db.table("tool_calls").insert(row))

    async def on_verdict(self, run_id: str, step: int, verdict: Verdict) -> None:
        """Record the verdict and whether the step's answer was accepted."""
        row = {
            "run_id": run_id,
            "step": step,
            "ok": int(verdict.ok),
            "checked": int(verdict.checked),
            "verifier": verdict.verifier,
            "findings": json.dumps([f.model_dump() for f in verdict.findings]),
            "feedback": verdict.feedback,
            "confidence": verdict.confidence,
            "scope": verdict.scope,
            "created_at": _now(),
        }

        def write() -> None:
            verdict_id = self.store.db.table("verdicts").insert(row).last_pk
            if verdict.samples:
                self._write_samples(run_id, step, verdict_id, verdict.samples)
            if verdict.scope == "answer":  # a check of tool arguments leaves the step's outcome
                self._end_step(run_id, step, "accepted" if verdict.ok else "rejected")

        await self.store.write(write)

    async def on_approval(self, run_id: str, step: int, decision: ApprovalDecision) -> None:
        """Record a call's approval decision, and each withheld tool once per run."""
        if decision.outcome == "withheld":
            if (run_id, decision.tool) in self._withheld:
                return
            self._withheld.add((run_id, decision.tool))
        row = {
            "run_id": run_id,
            "step": step,
            "tool_name": decision.tool,
            "outcome": decision.outcome,
            "decided_by": decision.by,
            "reason": decision.reason,
            "arguments": None if decision.arguments is None else json.dumps(decision.arguments),
            "created_at": _now(),
        }
        await self.store.write(lambda: self.store.db.table("approvals").insert(row))

    async def on_run_end(
        self,
        run_id: str,
        status: RunStatus,
        answer: str | None,
        error: str | None,
        *,
        verified: bool | None = None,
        verify_rounds: int = 0,
    ) -> None:
        """Close the run with its status, answer or error, and its verification outcome."""
        self._withheld = {seen for seen in self._withheld if seen[0] != run_id}
        started = self._started.pop(run_id, None)
        duration = (datetime.now(UTC) - started).total_seconds() if started else None
        update = {"status": status, "answer": answer, "error": error, "ended_at": _now(),
                  "duration_s": duration, "verified": None if verified is None else int(verified),
                  "verify_rounds": verify_rounds}  # fmt: skip
        await self.store.write(lambda: self.store.db.table("runs").update(run_id, update))

    def _write_samples(
        self, run_id: str, step: int, verdict_id: int | None, samples: list[Sample]
    ) -> None:
        rows = [
            {
                "verdict_id": verdict_id,
                "run_id": run_id,
                "step": step,
                "seed": sample.seed,
                "answer": sample.answer,
                "normalised": sample.normalised,
                "agrees": int(sample.agrees),
                "input_tokens": sample.input_tokens,
                "output_tokens": sample.output_tokens,
                "sample_run_id": sample.run_id,
            }
            for sample in samples
        ]
        self.store.db.table("verdict_samples").insert_all(rows)
        self.store.db.conn.executemany(
            "update runs set parent_run_id = ? where id = ?",
            [(run_id, s.run_id) for s in samples if s.run_id is not None],
        )

    def _end_step(self, run_id: str, step: int, outcome: str) -> None:
        self.store.db.execute(
            "update steps set outcome = ?, ended_at = ? where run_id = ? and step = ?",
            [outcome, _now(), run_id, step],
        )
