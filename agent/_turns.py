"""The turns of the agent loop: the model's, the tools', the verifier's, and what a run
carries from one to the next. `loop.iter_run` calls them in order; each names its policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from verity._dispatch import CallMemory, Owners, in_call_order, run_tools, tool_owners
from verity.errors import RunLimitExceeded
from verity.hooks import (
    ModelCallEnded,
    ModelCallStarted,
    RunEnded,
    RunHooks,
    RunStarted,
    RunStatus,
    VerdictReached,
)
from verity.messages import FinalStep, Message, ModelResponse, ToolCall, ToolStep, Verdict
from verity.models.base import Model, ToolChoice, describe_model
from verity.prompts import load_prompt
from verity.settings import RunSettings
from verity.tools.base import ToolResult
from verity.tools.toolset import Toolset, toolset_problems
from verity.verify import (
    AcceptAll,
    Screened,
    Verifier,
    VerifierCalls,
    VerifyRounds,
    candidate_of,
    check_calls,
)

__all__ = [
    "RunState",
    "check_arguments",
    "model_turn",
    "out_of_steps",
    "settle",
    "start_run",
    "tool_turn",
    "unusable_answer",
    "verify_turn",
]


@dataclass
class RunState:
    """What a run carries from one turn to the next."""

    task: str
    run_id: str
    model: Model
    toolsets: Sequence[Toolset]
    settings: RunSettings
    hooks: RunHooks
    judge: Verifier
    owners: Owners
    messages: list[Message]
    rounds: VerifyRounds
    evidence: list[tuple[ToolCall, ToolResult]] = field(default_factory=list)
    memory: CallMemory = field(default_factory=CallMemory)
    tool_choice: ToolChoice = "auto"
    last: ModelResponse | None = None
    status: RunStatus = "failed"
    answer: str | None = None
    error: str | None = None

    def ended(self) -> RunEnded:
        """The event that tells the hooks how the run ended."""
        return RunEnded(
            run_id=self.run_id,
            status=self.status,
            answer=self.answer,
            error=self.error,
            verified=self.rounds.verified,
            verify_rounds=self.rounds.checked,
        )


async def start_run(
    task: str,
    model: Model,
    toolsets: Sequence[Toolset],
    verifier: Verifier | None,
    settings: RunSettings,
    hooks: RunHooks,
    run_id: str,
    history: Sequence[Message],
) -> RunState:
    """The run's state, once its tools are listed and the hooks are told it started."""
    verifier = verifier or AcceptAll()
    state = RunState(
        task=task,
        run_id=run_id,
        model=model,
        toolsets=toolsets,
        settings=settings,
        hooks=hooks,
        judge=Screened(verifier) if settings.check_answers else verifier,
        owners=await tool_owners(toolsets, hooks=hooks, run_id=run_id, step=1),
        messages=[
            Message(role="system", content=settings.system_prompt or load_prompt("system")),
            *(message for message in history if message.role != "system"),
            Message(role="user", content=task),
        ],
        rounds=VerifyRounds(settings.max_verify_rounds),
    )
    config = {"model": describe_model(model), "run": settings.model_dump(mode="json")}
    await hooks.on_run_start(RunStarted(run_id=run_id, task=task, model=model.name, config=config))
    return state


async def model_turn(state: RunState, step: int) -> ModelResponse:
    """Call the model with the tools offered now; its message joins the conversation."""
    run_id, hooks, messages = state.run_id, state.hooks, state.messages
    if step > 1:  # servers may change their tools mid-run (MCP list_changed)
        state.owners = await tool_owners(state.toolsets, hooks=hooks, run_id=run_id, step=step)
    specs = [spec for spec, _ in state.owners.values()]
    await hooks.on_model_start(
        ModelCallStarted(run_id=run_id, step=step, messages=messages, tools=specs)
    )
    response = await state.model.respond(messages, specs, tool_choice=state.tool_choice)
    state.tool_choice, state.last = "auto", response
    await hooks.on_model_end(ModelCallEnded(run_id=run_id, step=step, response=response))
    if messages[-1].role == "assistant":  # it went on from a resumed answer: now whole
        messages.pop()
    messages.append(_assistant_message(response))
    return response


async def tool_turn(state: RunState, step: int, response: ModelResponse) -> ToolStep:
    """Run the calls that no earlier result answers, and quote every answer to the model."""
    calls, memory, owners = response.tool_calls, state.memory, state.owners
    recalled, repeated = memory.recall(calls, owners), memory.repeats(calls)
    fresh = [c for i, c in enumerate(calls) if i not in recalled]
    ran = await run_tools(state.run_id, step, fresh, owners, state.settings, state.hooks)
    answers = in_call_order(len(calls), recalled, ran)
    memory.remember(calls, answers, owners)
    state.evidence.extend(zip(fresh, ran, strict=True))
    state.messages.extend(_tool_messages(calls, answers))
    if response.invalid_calls:
        state.messages.append(Message(role="user", content=_retry_message(response)))
    if repeated:
        # Small models repeat a call forever. It ran again (or, read-only, was quoted
        # again): what the tool does is unchanged, but the next turn must answer.
        state.tool_choice = "none"
    return ToolStep(step=step, calls=fresh, results=ran)


async def check_arguments(state: RunState, tools: ToolStep) -> None:
    """With `check_tool_arguments`, judge the turn's calls against the task, for the trace."""
    if state.settings.check_tool_arguments and tools.calls:
        verdict = check_calls(state.task, tools.calls, state.evidence)
        await state.hooks.on_verdict(
            VerdictReached(run_id=state.run_id, step=tools.step, verdict=verdict)
        )


async def verify_turn(state: RunState, step: int, response: ModelResponse) -> Verdict:
    """The verifier's verdict on the answer, with the tokens its own model calls spent."""
    judging = VerifierCalls(state.hooks, run_id=state.run_id, step=step)
    offered = [spec for spec, _ in state.owners.values()]
    candidate = candidate_of(state.task, response, state.messages, state.evidence, judging, offered)
    verdict = await state.judge.verify(candidate)
    verdict = verdict.model_copy(update={"usage": judging.usage})
    await state.hooks.on_verdict(VerdictReached(run_id=state.run_id, step=step, verdict=verdict))
    return verdict


def settle(
    state: RunState, step: int, response: ModelResponse, verdict: Verdict
) -> FinalStep | None:
    """The run's last step when the verdict settles the answer; else None, and the verifier's
    feedback (or the answer's corrected beginning, to go on from) joins the conversation."""
    if (final := state.rounds.settle(response.content, verdict)) is not None:
        return _ending(state, step, final)
    if (resumed := _resumed(state.model, response, verdict)) is not None:
        state.messages[-1] = resumed
    else:
        state.messages.append(Message(role="user", content=verdict.feedback))
    return None


def out_of_steps(state: RunState) -> FinalStep:
    """The best answer verification let through, once `max_steps` are spent.

    Raises:
        RunLimitExceeded: there is none.
    """
    max_steps = state.settings.max_steps
    if state.rounds.best is not None:
        return _ending(state, max_steps, state.rounds.best)
    state.status = "limit_exceeded"
    state.error = _no_answer(max_steps, _unusable(state.toolsets, state.settings))
    assert state.last is not None  # max_steps is at least 1
    raise _limit_exceeded(state.error, max_steps, state.run_id, state.last)


def _ending(state: RunState, step: int, answer: str) -> FinalStep:
    """The run's last step, with `answer`: the run is completed."""
    unusable = _unusable(state.toolsets, state.settings)
    ending = state.rounds.ending(step, answer, unusable, state.messages)
    state.status, state.answer, state.error = "completed", answer, _why_not_answered(ending)
    return ending


def _unusable(toolsets: Sequence[Toolset], settings: RunSettings) -> list[str]:
    """The configured tools the model could not use (a server that did not start...)."""
    return toolset_problems(toolsets) if settings.check_answers else []


def _no_answer(max_steps: int, unusable: list[str]) -> str:
    said = f"No final answer after {max_steps} steps (max_steps)."
    if not unusable:
        return said
    return f"{said} Tools were missing: {'; '.join(u.rstrip('.') for u in unusable)}."


def _why_not_answered(ending: FinalStep) -> str | None:
    """What the trace keeps as the error of a run that ended with an answer not to rely on."""
    return None if ending.status == "answered" else f"{ending.status}: {ending.reason}"


def _assistant_message(response: ModelResponse) -> Message:
    return Message(
        role="assistant",
        content=response.content,
        reasoning=response.reasoning,
        tool_calls=response.tool_calls,
        raw=response.raw or None,
    )


def _resumed(model: Model, response: ModelResponse, verdict: Verdict) -> Message | None:
    """The rejected answer up to its first wrong result, the calculator's value in its place,
    for the model to go on from; None when there is none or the model cannot continue text."""
    begun = verdict.resume_from
    if begun is None or response.tool_calls or not getattr(model, "continues_answers", False):
        return None
    raw = (response.raw or "").rstrip()
    if raw and not raw.endswith(response.content):
        return None  # the answer's place in what the model wrote is unknown
    return Message(
        role="assistant",
        content=begun,
        reasoning=response.reasoning,
        raw=raw[: len(raw) - len(response.content)] + begun if raw else None,
    )


def _tool_messages(calls: list[ToolCall], results: list[ToolResult]) -> list[Message]:
    """Quote each result with what to do next: small models otherwise call and call again."""
    messages = []
    for call, result in zip(calls, results, strict=True):
        if result.is_error:
            content = (
                f"Error: {result.content}\n\n(The tool call failed. Fix the arguments and call "
                "again, or answer without this tool.)"
            )
        else:
            content = (
                f"{result.content}\n\n(Tool result above. Answer the user's question with it "
                "now, in plain text, unless you need another tool.)"
            )
        messages.append(Message(role="tool", tool_call_id=call.id, name=call.name, content=content))
    return messages


def _retry_message(response: ModelResponse) -> str:
    return (
        "Your tool call was invalid: "
        + " ".join(response.invalid_calls)
        + " Call the tool again with valid arguments, or answer in plain text."
    )


def _limit_exceeded(
    error: str, max_steps: int, run_id: str, last: ModelResponse
) -> RunLimitExceeded:
    """The error that ends a run at `max_steps`, with a hint at the limit that was really hit."""
    if last.finish_reason == "length":
        hint = (
            "The last answer was cut off at the token limit: raise --max-tokens "
            "(ModelSettings.max_tokens), or ask for a shorter answer."
        )
        partial = last.content or last.reasoning
    else:
        hint, partial = "Raise --max-steps, or simplify the task.", None
    return RunLimitExceeded(
        f"{error} {hint} Run {run_id} is in the trace.",
        max_steps=max_steps,
        run_id=run_id,
        partial_answer=partial,
    )


def unusable_answer(response: ModelResponse) -> str | None:
    """A retry message when the response cannot be a final answer, else None."""
    if response.invalid_calls:
        return _retry_message(response)
    if response.finish_reason == "length":
        return "Your answer was cut off at the token limit. Give the final answer, concisely."
    if response.finish_reason == "repetition":
        return "Your answer repeated the same text over and over. Give the final answer once."
    if not response.content.strip():
        return "Your answer was empty. Give the final answer in plain text."
    return None
