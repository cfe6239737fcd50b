"""A run that continues an earlier run's conversation, on the real embedded model."""

from __future__ import annotations

import pytest

from verity import LlamaCppModel, run
from verity.messages import ModelStep, Step, Usage
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset


def _calls(steps: list[Step]) -> list[Usage]:
    return [s.response.usage for s in steps if isinstance(s, ModelStep)]


@pytest.mark.slow
async def test_a_continued_conversation_evaluates_only_its_new_tokens(
    greedy_model: LlamaCppModel,
) -> None:
    tools = FunctionToolset([calculator])
    first = await run("What is 17 * 24?", model=greedy_model, toolsets=[tools])
    assert first.messages[-1].role == "assistant"
    assert first.messages[-1].content == first.answer
    second = await run(
        "Add 5 to that number.", model=greedy_model, toolsets=[tools], history=first.messages
    )
    shown = second.messages
    assert [m.content for m in shown[1 : len(first.messages)]] == [
        m.content for m in first.messages[1:]
    ]
    assert shown[len(first.messages)].content == "Add 5 to that number."
    before, now = _calls(first.steps)[-1], _calls(second.steps)[0]
    seen_before = before.prompt_tokens + before.completion_tokens
    assert now.prompt_tokens > seen_before
    # everything the model saw or wrote in the last turn came from the KV cache
    assert now.prompt_tokens_evaluated <= now.prompt_tokens - before.prompt_tokens
