"""Independent attempts at a task, for the consensus verifier (a layer above the loop)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.errors import ModelError, RunLimitExceeded
from agent.loop import iter_run
from agent.messages import FinalStep
from agent.models.base import Model
from agent.settings import RunSettings
from agent.verify import Solver
from tools.toolset import Toolset

__all__ = ["seeded_solver"]


def seeded_solver(
    model_for_seed: Callable[[int], Model],
    *,
    toolsets: Sequence[Toolset] = (),
    settings: RunSettings | None = None,
) -> Solver:
    """A `Solver` for `Consensus`: each seed answers the task in a fresh, unverified run.

    `model_for_seed(seed)` gives the model to sample with, e.g.
    `lambda seed: model.with_sampling(seed=seed, temperature=0.7)`. The toolsets must already be
    entered, as they are while the run being verified is going. The attempts are not traced.
    """

    async def solve(task: str, seed: int) -> str:
        try:
            steps = [
                step
                async for step in iter_run(
                    task, model=model_for_seed(seed), toolsets=toolsets, settings=settings
                )
            ]
        except (RunLimitExceeded, ModelError):
            # an attempt that found no answer, or outgrew the context, votes for nothing: the
            # run being verified is not at fault, and consensus counts the missing vote
            return ""
        final = steps[-1]
        return final.answer if isinstance(final, FinalStep) else ""

    return solve
