"""The recompute verifier: the answer is derived again, independently, and the two must agree.

The model writes a small program for the task alone (it never sees the candidate answer), code
runs it with the calculator's arithmetic (`_program.run_program`, no `eval`), and the program's
value is compared with the candidate's final number. Agreement of independent derivations is
the evidence that makes an answer "verified"; a disagreement is specific feedback: what the
recomputation gave, with the values it named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from verity.errors import UserError
from verity.messages import Finding, Message, Sample, Usage, Verdict
from verity.models.base import Model
from verity.prompts import load_prompt
from verity.tools.builtin.calculator import Number
from verity.verify._base import Candidate, repair_feedback
from verity.verify._compare import final_value, same_number
from verity.verify._program import ProgramError, extract_code, run_program
from verity.verify._word_problems import confirmed_only_if_complete

__all__ = ["Program", "Recompute"]

PROGRAM_MAX_TOKENS = 300
SAMPLE_TEMPERATURE = 0.7
_NAMES_SHOWN = 8
_TASKS_KEPT = 64


@dataclass
class Program:
    """One independent derivation: the program the model wrote and what it computed."""

    seed: int
    code: str
    value: Number | None = None
    """What it computed; None when it could not run."""
    error: str = ""
    names: dict[str, Number] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


class Recompute:
    """Accepts an answer when `agree` independent programs compute its final number.

    Programs are written one at a time (the first greedily, the others sampled with seeds 1, 2,
    ...) until `agree` of them agree with the candidate, or until that can no longer happen
    within `samples` programs. Identical programs count once. A program that cannot run votes
    for nothing. The answer is accepted as verified when at least `agree` programs agree and
    none disagrees (programs of one model share its mistakes: two computing a wrong answer
    against one computing the right one was seen on GSM8K); rejected, with what the programs
    computed, when more programs disagree than agree and `agree` of them compute one other
    value (a consistent counter-derivation, something a repair can act on); otherwise accepted
    unverified. Agreement verifies only an answer whose working uses every number the task
    gives (`confirmed_only_if_complete`): programs share the model's misreadings too.

    A value this verifier quoted in its feedback is no longer independent evidence: an answer
    that repeats it needs one more agreeing program, and its confidence counts only the programs
    whose values were not quoted (so a copied value does not outrank the model's own answer when
    neither is verified).

    Programs depend on the task only, so later rounds of the same run reuse them.

    Args:
        model: The model that writes the programs (best on a context of its own:
            `LlamaCppModel.with_own_context`).
        samples: Most programs written per check.
        agree: Agreeing programs needed.
        model_for_seed: The model for each seed; by default `model.with_sampling(...)` when it
            has it (greedy for seed 0, `SAMPLE_TEMPERATURE` after), else `model`.

    Raises:
        UserError: `samples` is below 1, or `agree` is not between 1 and `samples`.
    """

    name = "recompute"

    def __init__(
        self,
        model: Model,
        *,
        samples: int = 3,
        agree: int = 2,
        model_for_seed: Callable[[int], Model] | None = None,
    ) -> None:
        if samples < 1 or not 1 <= agree <= samples:
            raise UserError(
                f"recompute needs 1 <= agree <= samples, not agree={agree}, samples={samples}.",
                field="verify",
            )
        self.model = model
        self.samples = samples
        self.agree = agree
        self.model_for_seed = model_for_seed or _varied(model)
        self._tasks: dict[str, _Derivations] = {}

    async def verify(self, candidate: Candidate) -> Verdict:
        """Recompute the answer and compare; a rejection says what the recomputation gave.

        Raises:
            ModelError: the model backend failed.
        """
        state = self._state(candidate.task)
        mine = final_value(candidate.answer)
        if mine is None:
            finding = Finding(
                claim="final answer",
                ok=True,
                evidence="The answer has no final number to recompute.",
            )
            return Verdict(ok=True, verifier=self.name, findings=[finding], conclusive=False)
        repeats_feedback = any(same_number(mine, value) for value in state.revealed)
        needed = self.agree + repeats_feedback
        budget = self.samples + repeats_feedback
        tally = _Tally(mine)
        programs = state.programs
        for program in programs:
            tally.add(program)
        while len(programs) < budget and tally.agreeing < needed:
            if tally.agreeing + budget - len(programs) < needed:
                break  # agreement can no longer be reached: stop spending tokens
            program = await self._write(candidate, seed=len(programs))
            programs.append(program)
            tally.add(program)
        verdict = self._verdict(mine, tally, needed, state, fresh_only=repeats_feedback)
        return confirmed_only_if_complete(verdict, candidate)

    def programs(self, task: str) -> list[Program]:
        """Every program written for `task` so far, in order."""
        return list(self._tasks[task].programs) if task in self._tasks else []

    def _state(self, task: str) -> _Derivations:
        # Keyed by task: one verifier may serve runs of several tasks, even at once.
        if task not in self._tasks:
            while len(self._tasks) >= _TASKS_KEPT:
                self._tasks.pop(next(iter(self._tasks)))
            self._tasks[task] = _Derivations()
        return self._tasks[task]

    async def _write(self, candidate: Candidate, *, seed: int) -> Program:
        messages = [
            Message(role="system", content=load_prompt("recompute")),
            Message(role="user", content=load_prompt("recompute_task").format(task=candidate.task)),
        ]
        response = await candidate.calls.respond(self.model_for_seed(seed), messages, [])
        program = Program(seed=seed, code=extract_code(response.content), usage=response.usage)
        try:
            run = run_program(program.code)
        except ProgramError as exc:
            program.error = str(exc)
        else:
            program.value, program.names = run.value, run.names
        return program

    def _verdict(
        self, mine: float, tally: _Tally, needed: int, state: _Derivations, *, fresh_only: bool
    ) -> Verdict:
        conclusive = tally.agreeing >= needed and not tally.disagreeing
        # rejected (sent back with what the programs computed) only when more programs disagree
        # than agree and `agree` of them reach one other value: a repair then has a clear
        # target; programs that merely scatter leave the answer unverified, not sent back
        outvoted = len(tally.disagreeing) > tally.agreeing
        ok = conclusive or not (outvoted and tally.largest_alternative() >= self.agree)
        findings = [_finding(p, mine) for p in tally.counted]
        if not tally.counted:
            nothing = "No program could be run to compare with."
            findings.append(Finding(claim="recomputation", ok=True, evidence=nothing))
        feedback = ""
        if not ok:
            state.revealed.extend(float(p.value) for p in tally.disagreeing if p.value is not None)
            state.quoted.update(p.seed for p in tally.disagreeing)
            feedback = repair_feedback(findings)
        return Verdict(
            ok=ok,
            verifier=self.name,
            findings=findings,
            feedback=feedback,
            confidence=tally.confidence(exclude=state.quoted if fresh_only else set()),
            conclusive=conclusive,
            samples=[_sample(p, mine) for p in tally.counted],
        )


@dataclass
class _Derivations:
    """What was derived for one task, across the rounds of its run."""

    programs: list[Program] = field(default_factory=list)
    revealed: list[float] = field(default_factory=list)
    """Values quoted to the model in feedback."""
    quoted: set[int] = field(default_factory=set)
    """Seeds of the programs whose values were quoted."""


class _Tally:
    """The programs counted for one candidate: distinct code that computed a value."""

    def __init__(self, mine: float) -> None:
        self.mine = mine
        self.counted: list[Program] = []
        self.agreeing = 0
        self.disagreeing: list[Program] = []
        self._seen: set[str] = set()

    def largest_alternative(self) -> int:
        """How many disagreeing programs computed the most common other value."""
        values = [float(p.value) for p in self.disagreeing if p.value is not None]
        return max((sum(same_number(v, w) for w in values) for v in values), default=0)

    def confidence(self, *, exclude: set[int]) -> float | None:
        """The share of programs that computed a value and agree, those in `exclude` left out."""
        votes = [
            same_number(float(p.value), self.mine)
            for p in self.counted
            if p.value is not None and p.seed not in exclude
        ]
        return sum(votes) / len(votes) if votes else None

    def add(self, program: Program) -> None:
        key = " ".join(program.code.split())
        if key in self._seen:
            return  # the same program again (greedy sampling) is no new evidence
        self._seen.add(key)
        self.counted.append(program)
        if program.value is None:
            return
        if same_number(float(program.value), self.mine):
            self.agreeing += 1
        else:
            self.disagreeing.append(program)


def _varied(model: Model) -> Callable[[int], Model]:
    with_sampling = getattr(model, "with_sampling", None)
    if with_sampling is None:
        return lambda seed: model

    def for_seed(seed: int) -> Model:
        if seed == 0:
            return with_sampling(temperature=0.0, max_tokens=PROGRAM_MAX_TOKENS)  # type: ignore[no-any-return]
        return with_sampling(  # type: ignore[no-any-return]
            temperature=SAMPLE_TEMPERATURE, seed=seed, max_tokens=PROGRAM_MAX_TOKENS
        )

    return for_seed


def _shown(value: Number) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _finding(program: Program, mine: float) -> Finding:
    name = f"a program written from the task alone (seed {program.seed})"
    if program.value is None:
        return Finding(claim=name, ok=True, evidence=f"could not run: {program.error[:160]}")
    agrees = same_number(float(program.value), mine)
    values = ", ".join(f"{k} = {_shown(v)}" for k, v in list(program.names.items())[:_NAMES_SHOWN])
    verb = "agrees" if agrees else f"computes {_shown(program.value)}, not {_shown(mine)}"
    return Finding(
        claim=name, ok=agrees, evidence=f"{verb}" + (f"; its values: {values}" if values else "")
    )


def _sample(program: Program, mine: float) -> Sample:
    value = "" if program.value is None else _shown(program.value)
    agrees = program.value is not None and same_number(float(program.value), mine)
    return Sample(
        seed=program.seed,
        answer=value,
        normalised=value,
        agrees=agrees,
        input_tokens=program.usage.prompt_tokens,
        input_tokens_evaluated=program.usage.prompt_tokens_evaluated,
        output_tokens=program.usage.completion_tokens,
    )
