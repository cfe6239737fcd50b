"""Server-sent chat-completion chunks assembled into one non-streamed answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verity.errors import ModelError
from verity.models.base import DeltaKind

__all__ = ["DeltaKind", "StreamedMessage"]


@dataclass
class StreamedMessage:
    """Chat-completion chunks assembled into the shape of a non-streamed payload."""

    events: int = 0
    done: bool = False
    first_s: float | None = None
    finish_reason: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int | str, dict[str, str]] = field(default_factory=dict)

    def add_line(
        self, url: str, line: str, on_delta: Callable[[DeltaKind, str], None] | None
    ) -> bool:
        """Take one SSE line; True if it carried the first text or call of the answer."""
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "error":  # llama-server reports a failure mid-stream as `error: {...}`
            raise ModelError(f"{url} sent an error mid-stream: {value[:500]}")
        if name != "data" or not value.strip():
            return False  # blank separators, `: keep-alive` comments, `event:` and `id:` fields
        self.events += 1
        if value.strip() == "[DONE]":
            self.done = True
            return False
        try:
            chunk = json.loads(value)
        except json.JSONDecodeError:
            raise ModelError(f"{url} sent a malformed stream event: {value[:300]!r}") from None
        if not isinstance(chunk, dict):
            raise ModelError(f"{url} sent a malformed stream event: {value[:300]!r}")
        if chunk.get("error"):
            raise ModelError(f"{url} sent an error mid-stream: {json.dumps(chunk['error'])[:500]}")
        self.model = self.model or chunk.get("model")
        self.usage = chunk.get("usage") or self.usage
        choices = chunk.get("choices") or [{}]
        self.finish_reason = choices[0].get("finish_reason") or self.finish_reason
        return self._add_delta(choices[0].get("delta") or {}, on_delta)

    def _add_delta(
        self, delta: dict[str, Any], on_delta: Callable[[DeltaKind, str], None] | None
    ) -> bool:
        had_output = bool(self.content or self.reasoning or self.calls)
        pieces: list[tuple[DeltaKind, str]] = [
            ("reasoning", delta.get("reasoning_content") or delta.get("reasoning") or ""),
            ("content", delta.get("content") or ""),
        ]
        for kind, text in pieces:
            if text:
                (self.reasoning if kind == "reasoning" else self.content).append(text)
                if on_delta is not None:
                    on_delta(kind, text)
        for position, wire in enumerate(delta.get("tool_calls") or []):
            index = wire.get("index")
            key = index if isinstance(index, int) else (wire.get("id") or position)
            call = self.calls.setdefault(key, {"id": "", "name": "", "arguments": ""})
            function = wire.get("function") or {}
            call["id"] = call["id"] or wire.get("id") or ""
            name = function.get("name") or ""
            # The spec sends the name once; llama-cpp-python repeats it in every chunk.
            call["name"] = name if name.startswith(call["name"]) else call["name"] + name
            call["arguments"] += function.get("arguments") or ""
        return not had_output and bool(self.content or self.reasoning or self.calls)

    def payload(self) -> dict[str, Any]:
        """The assembled answer as a non-streamed `chat.completion` body."""
        message = {
            "content": "".join(self.content) or None,
            "reasoning_content": "".join(self.reasoning) or None,
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in self.calls.values()
            ],
        }
        choice = {"message": message, "finish_reason": self.finish_reason}
        return {"choices": [choice], "usage": self.usage, "model": self.model}
