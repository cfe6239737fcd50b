"""A fresh attempt at the task after a contested answer, on the real embedded model."""

from __future__ import annotations

import anyio
import pytest

from verity import LlamaCppModel, Message, ModelStep, RunSettings, Verdict, iter_run
from verity.prompts import load_prompt
from verity.verify import Candidate

TASK = "A bakery sold cakes for $204, pies for $160 and bread for $330. What did it take in?"


class ContestsTheFirstAnswer:
    """Contests the first answer (as programs that scatter against it do), then accepts."""

    def __init__(self) -> None:
        self.candidates: list[Candidate] = []

    async def verify(self, candidate: Candidate) -> Verdict:
        self.candidates.append(candidate)
        if len(self.candidates) == 1:
            return Verdict(ok=True, verifier="test", confidence=0.0, conclusive=False,
                           contested=True)  # fmt: skip
        return Verdict(ok=True, verifier="test", confidence=1.0, conclusive=False)


@pytest.mark.slow
async def test_a_fresh_attempt_is_sampled_on_the_loaded_model_from_the_cached_task(
    greedy_model: LlamaCppModel,
) -> None:
    verifier = ContestsTheFirstAnswer()
    settings = RunSettings(max_verify_rounds=2)
    with anyio.fail_after(180):
        steps = [s async for s in iter_run(TASK, model=greedy_model, verifier=verifier,
                                           settings=settings)]  # fmt: skip
        first, fresh = [s.response for s in steps if isinstance(s, ModelStep)]
        # the same seed on the same prompt gives the same attempt: it was sampled with seed 1
        task = [Message(role="system", content=load_prompt("system")),
                Message(role="user", content=TASK)]  # fmt: skip
        again = await greedy_model.with_sampling(temperature=0.7, seed=1).respond(task, [])
    assert fresh.content == again.content
    assert fresh.content != first.content  # not the greedy answer again
    assert [m.role for m in verifier.candidates[1].messages] == ["system", "user", "assistant"]
    # the task's prompt was in the KV cache from the first attempt: only new tokens are read
    assert fresh.usage.prompt_tokens == first.usage.prompt_tokens
    assert fresh.usage.prompt_tokens_evaluated <= 2
    assert steps[-1].kind == "final" and steps[-1].answer == fresh.content
