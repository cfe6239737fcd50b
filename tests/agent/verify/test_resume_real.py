"""Going on from an answer's corrected step, on the real embedded model."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from verity import LlamaCppModel, Message, ModelResponse, ModelSettings, run
from verity.models.base import ToolChoice
from verity.tools.base import ToolSpec
from verity.verify import SelfCheck, normalise_answer

TASK = "A bakery sold cakes for $204, pies for $160 and bread for $330. What did it take in?"


@pytest.mark.slow
async def test_going_on_from_part_of_an_answer_evaluates_only_what_follows_it(
    greedy_model: LlamaCppModel,
) -> None:
    messages = [Message(role="system", content="Be brief."), Message(role="user", content=TASK)]
    with anyio.fail_after(120):
        first = await greedy_model.respond(messages, [])
        cut = first.raw.rindex(" ", 0, len(first.raw) // 2)  # a word boundary mid-answer
        begun = Message(role="assistant", content=first.raw[:cut], raw=first.raw[:cut])
        resumed = await greedy_model.respond([*messages, begun], [])
    assert resumed.content.startswith(begun.content)
    assert resumed.raw.startswith(first.raw[:cut])
    # the beginning was in the KV cache already: only its boundary token may be read again
    assert resumed.usage.prompt_tokens_evaluated <= 2
    assert resumed.usage.prompt_tokens > 20


class FirstAnswerSlips:
    """The real model, except that its first answer adds up wrongly."""

    continues_answers = True

    def __init__(self, model: LlamaCppModel) -> None:
        self.model = model
        self.requests: list[list[Message]] = []

    @property
    def name(self) -> str:
        return self.model.name

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        self.requests.append(list(messages))
        if len(self.requests) == 1:
            slip = "It took in $204 + $160 + $330 = $794. The answer is 794."
            return ModelResponse(content=slip, raw=slip)
        return await self.model.respond(messages, tools, tool_choice=tool_choice)


@pytest.mark.slow
async def test_the_real_model_goes_on_from_the_corrected_step_to_the_right_answer(
    greedy_model: LlamaCppModel,
) -> None:
    model = FirstAnswerSlips(greedy_model)
    with anyio.fail_after(180):
        result = await run(TASK, model=model, verifier=SelfCheck())
    assert model.requests[1][-1].content == "It took in $204 + $160 + $330 = $694"
    assert result.answer.startswith("It took in $204 + $160 + $330 = $694")
    assert normalise_answer(result.answer) == "694"


@pytest.mark.slow
async def test_an_answer_after_reasoning_goes_on_as_an_answer(thinking_model_path: Path) -> None:
    settings = ModelSettings(temperature=0, n_ctx=2048, max_tokens=96, max_thinking_tokens=8)
    model = LlamaCppModel(thinking_model_path, settings)
    messages = [Message(role="user", content=TASK)]
    try:
        with anyio.fail_after(120):
            first = await model.respond(messages, [])
            assert first.reasoning and first.content and first.raw.rstrip().endswith(first.content)
            cut = first.content.rindex(" ", 0, max(1, len(first.content) // 2) + 1)
            head = first.raw.rstrip()[: len(first.raw.rstrip()) - len(first.content)]
            begun = Message(
                role="assistant",
                content=first.content[:cut],
                reasoning=first.reasoning,
                raw=head + first.content[:cut],
            )
            resumed = await model.respond([*messages, begun], [])
    finally:
        model.close()
    # the reasoning was closed before the cut: what follows is answer, not more reasoning
    assert resumed.reasoning == first.reasoning
    assert resumed.content.startswith(first.content[:cut])
    assert resumed.usage.prompt_tokens_evaluated <= 2
