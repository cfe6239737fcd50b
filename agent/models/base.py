"""The Model protocol every backend implements."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from verity.messages import Message, ModelResponse
from verity.tools.base import ToolSpec

__all__ = ["DeltaKind", "Model", "ToolChoice", "describe_model", "function_tool"]

ToolChoice = Literal["auto", "none", "required"] | str
""""auto", "none", "required", or the name of the one tool that must be called."""

DeltaKind = Literal["content", "reasoning"]
"""What a streamed piece of text is: part of the answer, or of the reasoning."""


@runtime_checkable
class Model(Protocol):
    """A chat model that can call tools."""

    @property
    def name(self) -> str:
        """A short name for traces and progress output."""
        ...

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        """Produce the next assistant turn.

        Raises:
            ModelError: the backend failed (not for invalid tool calls: those come back in
                `ModelResponse.invalid_calls`).
        """
        ...


def function_tool(spec: ToolSpec) -> dict[str, Any]:
    """The OpenAI "function" tool shape that chat templates and HTTP servers both expect."""
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


def describe_model(model: Model) -> dict[str, Any]:
    """What a trace records about a model: its own `describe()` (backend, file or URL, sampling
    and GPU settings) when it has one, else its name."""
    describe = getattr(model, "describe", None)
    described = describe() if callable(describe) else None
    return dict(described) if isinstance(described, dict) else {"name": model.name}
