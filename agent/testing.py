"""A scripted model for tests of loop logic (sequencing, limits, feedback).

Never the proof that a feature works: that takes a real model.
"""

from __future__ import annotations

from collections.abc import Sequence

from verity.messages import Message, ModelResponse, ToolCall
from verity.models.base import ToolChoice
from verity.tools.base import ToolSpec

__all__ = ["ScriptedModel", "ScriptExhaustedError", "answer", "calls"]


class ScriptExhaustedError(AssertionError):
    """The loop asked the scripted model for more turns than the script has."""


def answer(text: str) -> ModelResponse:
    """A scripted final answer."""
    return ModelResponse(content=text, raw=text)


def calls(*pairs: tuple[str, dict[str, object]]) -> ModelResponse:
    """A scripted turn calling the given tools, in order."""
    tool_calls = [
        ToolCall(id=f"call_{index}", name=name, arguments=dict(arguments))
        for index, (name, arguments) in enumerate(pairs)
    ]
    return ModelResponse(tool_calls=tool_calls, finish_reason="tool_calls")


class ScriptedModel:
    """Replays responses in order and records what it was asked."""

    name = "scripted"

    def __init__(
        self, responses: Sequence[ModelResponse], *, continues_answers: bool = False
    ) -> None:
        self.continues_answers = continues_answers
        """Claim to go on from an assistant message that ends the conversation (the scripted
        response is then the whole message)."""
        self._responses = list(responses)
        self.requests: list[tuple[list[Message], list[ToolSpec]]] = []
        self.tool_choices: list[ToolChoice] = []

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        """The next scripted response.

        Raises:
            ScriptExhaustedError: the script has no responses left.
        """
        if len(self.requests) >= len(self._responses):
            raise ScriptExhaustedError(f"script exhausted after {len(self._responses)} responses")
        self.requests.append((list(messages), list(tools)))
        self.tool_choices.append(tool_choice)
        return self._responses[len(self.requests) - 1]

    def assert_complete(self) -> None:
        """Fail unless every scripted response was used."""
        unused = len(self._responses) - len(self.requests)
        assert unused == 0, f"{unused} scripted responses were never requested"
