"""The consensus verifier: independent attempts at the same task must reach the same answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from verity.errors import UserError
from verity.messages import Finding, Sample, Usage, Verdict
from verity.verify._base import Candidate
from verity.verify._claims import normalise_answer
from verity.verify._compare import same_answer
from verity.verify._word_problems import confirmed_only_if_complete

__all__ = ["Consensus", "Solver"]

Solver = Callable[[str, int], Awaitable[str | Sample]]
"""Answers `task` in a fresh attempt sampled with `seed`: the answer ("" when the attempt gave
none), or a `Sample` that also names its traced run and tokens. `verity.solver.seeded_solver`
builds one from a model."""


class Consensus:
    """Accepts an answer when more than `majority` of `samples` answers agree with it.

    The candidate is one of the `samples`; the other `samples - 1` come from `solve` with seeds
    `seed`, `seed + 1`, ... They depend on the task only, so a later round of the same run reuses
    them. Answers agree when they reach the same final answer (`same_answer`: numbers as
    numbers, the rest by math-verify); `normalise` gives the form shown and tallied. The verdict
    lists every attempt in `Verdict.samples`, with whether it agrees with the candidate. Their
    tokens count in the verdict's usage the first time they are drawn. An accepted answer is
    verified only when its working uses every number the task gives
    (`confirmed_only_if_complete`): samples of one model share its misreadings.

    Args:
        solve: Produces one independent answer per seed.
        samples: Answers compared, the candidate included (at least 2).
        majority: The share of answers that must agree with the candidate, exceeded strictly:
            0.5 means more than half.
        seed: The first sampling seed.
        normalise: Maps an answer to the form that is compared.

    Raises:
        UserError: `samples` is below 2 or `majority` is outside [0, 1).
    """

    name = "consensus"

    def __init__(
        self,
        solve: Solver,
        *,
        samples: int = 3,
        majority: float = 0.5,
        seed: int = 1,
        normalise: Callable[[str], str] = normalise_answer,
    ) -> None:
        if samples < 2:
            raise UserError(f"consensus needs at least 2 samples, not {samples}.", field="verify")
        if not 0 <= majority < 1:
            raise UserError(
                f"The consensus majority is a share in [0, 1), not {majority}.", field="verify"
            )
        self.solve = solve
        self.samples = samples
        self.majority = majority
        self.seed = seed
        self.normalise = normalise
        self._cached: tuple[str, list[Sample]] | None = None

    async def verify(self, candidate: Candidate) -> Verdict:
        """Compare the candidate with the independent answers; disagreement is a finding.

        Raises:
            ModelError: sampling an answer failed in the model backend.
        """
        mine = self.normalise(candidate.answer)
        samples = []
        for sample in await self._others(candidate):
            normalised = self.normalise(sample.answer) if sample.answer.strip() else ""
            agrees = bool(normalised) and same_answer(sample.answer, candidate.answer)
            samples.append(sample.model_copy(update={"normalised": normalised, "agrees": agrees}))
        votes = Counter(sample.normalised for sample in samples if sample.normalised)
        agreeing = 1 + sum(sample.agrees for sample in samples)
        share = agreeing / self.samples
        ok = share > self.majority
        tally = ", ".join(f"{answer or '(none)'} x{count}" for answer, count in votes.most_common())
        finding = Finding(
            claim=f"final answer {mine or '(none)'}",
            ok=ok,
            evidence=f"{agreeing} of {self.samples} answers agree; independent attempts gave: "
            f"{tally or 'no answer'}.",
        )
        feedback = ""
        if not ok:
            feedback = (
                f"Independent attempts at this task reached other answers ({tally or 'none'}), "
                f"not {mine}. Recheck each step with the tools and give the corrected final answer."
            )
        verdict = Verdict(
            ok=ok,
            verifier=self.name,
            findings=[finding],
            feedback=feedback,
            confidence=share,
            samples=samples,
        )
        return confirmed_only_if_complete(verdict, candidate)

    async def _others(self, candidate: Candidate) -> list[Sample]:
        task = candidate.task
        if self._cached is None or self._cached[0] != task:
            seeds = range(self.seed, self.seed + self.samples - 1)
            self._cached = (task, [await self._sample(task, seed) for seed in seeds])
            for sample in self._cached[1]:
                candidate.calls.count(
                    Usage(
                        prompt_tokens=sample.input_tokens,
                        prompt_tokens_evaluated=sample.input_tokens_evaluated,
                        completion_tokens=sample.output_tokens,
                    )
                )
        return self._cached[1]

    async def _sample(self, task: str, seed: int) -> Sample:
        solved = await self.solve(task, seed)
        if isinstance(solved, str):
            return Sample(seed=seed, answer=solved)
        return solved.model_copy(update={"seed": seed})
