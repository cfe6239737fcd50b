"""Independent attempts at a task, for the consensus verifier (a layer above the loop)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from verity.errors import ModelError, RunLimitExceeded
from verity.hooks import RunHooks
from verity.loop import iter_run, new_run_id
from verity.messages import FinalStep, ModelStep, Sample, Usage
from verity.models.base import Model
from verity.settings import RunSettings
from verity.tools.toolset import Toolset
from verity.verify import Solver

__all__ = ["seeded_solver"]


def seeded_solver(
    model_for_seed: Callable[[int], Model],
    *,
    toolsets: Sequence[Toolset] = (),
    settings: RunSettings | None = None,
    hooks: RunHooks | None = None,
) -> Solver:
    """A `Solver` for `Consensus`: each seed answers the task in a fresh, unverified run.

    `model_for_seed(seed)` gives the model to sample with, e.g.
    `lambda seed: model.with_sampling(seed=seed, temperature=0.7)`. The toolsets must already be
    entered, as they are while the run being verified is going. With `hooks` (a `TraceRecorder`)
    each attempt is traced as a run of its own, and the verdict's `Sample` names it; recording
    the verdict links it to the run being verified (`runs.parent_run_id`).
    """

    async def solve(task: str, seed: int) -> Sample:
        run_id = new_run_id()
        answer, usage = "", Usage()  # counted as they come: a failed attempt used tokens too
        try:
            async for step in iter_run(
                task,
                model=model_for_seed(seed),
                toolsets=toolsets,
                settings=settings,
                hooks=hooks,
                run_id=run_id,
            ):
                if isinstance(step, ModelStep):
                    usage += step.response.usage
                elif isinstance(step, FinalStep):
                    answer = step.answer
        except (RunLimitExceeded, ModelError):
            # an attempt that found no answer, or outgrew the context, votes for nothing: the
            # run being verified is not at fault, and consensus counts the missing vote
            pass
        return Sample(
            seed=seed,
            answer=answer,
            input_tokens=usage.prompt_tokens,
            input_tokens_evaluated=usage.prompt_tokens_evaluated,
            output_tokens=usage.completion_tokens,
            run_id=run_id if hooks is not None else None,
        )

    return solve
