"""The agent loop: model → tool calls → results → … → verified final answer."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import anyio

from verity._dispatch import CallMemory, in_call_order, run_tools, tool_owners
from verity.answers import boxed_answer
from verity.errors import RunLimitExceeded, UserError
from verity.hooks import (
    ModelCallEnded,
    ModelCallStarted,
    RunEnded,
    RunHooks,
    RunStarted,
    RunStatus,
    VerdictReached,
)
from verity.messages import (
    FinalStep,
    Message,
    ModelResponse,
    ModelStep,
    RunResult,
    Step,
    ToolCall,
    ToolStep,
    Usage,
    Verdict,
    VerifyStep,
)
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

__all__ = ["iter_run", "new_run_id", "run", "run_sync"]


def new_run_id() -> str:
    """A sortable, readable run id such as `20261128-173012-4f9a2c`."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


async def iter_run(
    task: str,
    *,
    model: Model,
    toolsets: Sequence[Toolset] = (),
    verifier: Verifier | None = None,
    settings: RunSettings | None = None,
    hooks: RunHooks | None = None,
    run_id: str | None = None,
    history: Sequence[Message] = (),
) -> AsyncIterator[Step]:
    """Run `task` and yield each step as it happens. Toolsets must already be entered.

    `history` is an earlier run's conversation (`RunResult.messages`): the task continues it,
    under this run's system prompt. Given as it was, it renders as it was, so a local model
    evaluates only the new tokens.

    Raises:
        UserError: the task is empty or not text, a toolset is not open, or two toolsets offer
            the same tool name.
        RunLimitExceeded: `max_steps` model calls gave no accepted answer.
        ModelError: the model backend failed.
    """
    _check_task(task)
    settings = settings or RunSettings()
    hooks = hooks or RunHooks()
    verifier = verifier or AcceptAll()
    judge = Screened(verifier) if settings.check_answers else verifier
    run_id = run_id or new_run_id()
    owners = await tool_owners(toolsets, hooks=hooks, run_id=run_id, step=1)
    specs = [spec for spec, _ in owners.values()]
    messages = [
        Message(role="system", content=settings.system_prompt or load_prompt("system")),
        *(message for message in history if message.role != "system"),
        Message(role="user", content=task),
    ]
    evidence: list[tuple[ToolCall, ToolResult]] = []
    memory = CallMemory()
    tool_choice: ToolChoice = "auto"
    rounds = VerifyRounds(settings.max_verify_rounds)
    status: RunStatus = "failed"
    answer: str | None = None
    error: str | None = None
    config = {"model": describe_model(model), "run": settings.model_dump(mode="json")}
    await hooks.on_run_start(RunStarted(run_id=run_id, task=task, model=model.name, config=config))
    try:
        for step in range(1, settings.max_steps + 1):
            if step > 1:  # servers may change their tools mid-run (MCP list_changed)
                owners = await tool_owners(toolsets, hooks=hooks, run_id=run_id, step=step)
                specs = [spec for spec, _ in owners.values()]
            await hooks.on_model_start(
                ModelCallStarted(run_id=run_id, step=step, messages=messages, tools=specs)
            )
            response = await model.respond(messages, specs, tool_choice=tool_choice)
            tool_choice = "auto"
            await hooks.on_model_end(ModelCallEnded(run_id=run_id, step=step, response=response))
            yield ModelStep(step=step, response=response)
            if messages[-1].role == "assistant":  # it went on from a resumed answer: now whole
                messages.pop()
            messages.append(_assistant_message(response))
            if response.tool_calls:
                calls = response.tool_calls
                recalled, repeated = memory.recall(calls, owners), memory.repeats(calls)
                fresh = [c for i, c in enumerate(calls) if i not in recalled]
                ran = await run_tools(run_id, step, fresh, owners, settings, hooks)
                answers = in_call_order(len(calls), recalled, ran)
                memory.remember(calls, answers, owners)
                evidence.extend(zip(fresh, ran, strict=True))
                yield ToolStep(step=step, calls=fresh, results=ran)
                if settings.check_tool_arguments and fresh:
                    checked = check_calls(task, fresh, evidence)
                    await hooks.on_verdict(
                        VerdictReached(run_id=run_id, step=step, verdict=checked)
                    )
                messages.extend(_tool_messages(calls, answers))
                if response.invalid_calls:
                    messages.append(Message(role="user", content=_retry_message(response)))
                if repeated:
                    # Small models repeat a call forever. It ran again (or, read-only, was quoted
                    # again): what the tool does is unchanged, but the next turn must answer.
                    tool_choice = "none"
                continue
            if problem := _unusable_answer(response):
                messages.append(Message(role="user", content=problem))
                continue
            judging = VerifierCalls(hooks, run_id=run_id, step=step)
            verdict = await judge.verify(candidate_of(task, response, messages, evidence, judging))
            verdict = verdict.model_copy(update={"usage": judging.usage})
            await hooks.on_verdict(VerdictReached(run_id=run_id, step=step, verdict=verdict))
            yield VerifyStep(step=step, verdict=verdict)
            if (final := rounds.settle(response.content, verdict)) is not None:
                ending = rounds.ending(step, final, _unusable(toolsets, settings), messages)
                status, answer, error = "completed", final, _why_not_answered(ending)
                yield ending
                return
            if (resumed := _resumed(model, response, verdict)) is not None:
                messages[-1] = resumed
            else:
                messages.append(Message(role="user", content=verdict.feedback))
        if rounds.best is not None:
            unusable = _unusable(toolsets, settings)
            ending = rounds.ending(settings.max_steps, rounds.best, unusable, messages)
            status, answer, error = "completed", rounds.best, _why_not_answered(ending)
            yield ending
            return
        status = "limit_exceeded"
        error = _no_answer(settings.max_steps, _unusable(toolsets, settings))
        raise _limit_exceeded(error, settings.max_steps, run_id, response)
    except anyio.get_cancelled_exc_class():
        status, error = "cancelled", "The run was cancelled."
        raise
    except Exception as exc:
        if status != "limit_exceeded":
            error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await hooks.on_run_end(
                RunEnded(
                    run_id=run_id,
                    status=status,
                    answer=answer,
                    error=error,
                    verified=rounds.verified,
                    verify_rounds=rounds.checked,
                )
            )


async def run(
    task: str,
    *,
    model: Model,
    toolsets: Sequence[Toolset] = (),
    verifier: Verifier | None = None,
    settings: RunSettings | None = None,
    hooks: RunHooks | None = None,
    run_id: str | None = None,
    history: Sequence[Message] = (),
) -> RunResult:
    """Enter the toolsets, run `task` to its end and return the result.

    `history` continues an earlier run's conversation (`RunResult.messages`).

    Toolsets already open stay open: an `MCPToolset` held in `async with` serves many runs.

    Raises:
        UserError: the task is empty or tool names collide.
        RunLimitExceeded: `max_steps` model calls gave no accepted answer.
        ModelError: the model backend failed.
    """
    run_id = run_id or new_run_id()
    async with AsyncExitStack() as stack:
        for toolset in toolsets:
            await stack.enter_async_context(toolset)
        steps = [
            step
            async for step in iter_run(
                task,
                model=model,
                toolsets=toolsets,
                verifier=verifier,
                settings=settings,
                hooks=hooks,
                run_id=run_id,
                history=history,
            )
        ]
    final = steps[-1]
    assert isinstance(final, FinalStep)
    usage = sum((s.response.usage for s in steps if isinstance(s, ModelStep)), Usage())
    usage = sum((s.verdict.usage for s in steps if isinstance(s, VerifyStep)), usage)
    return RunResult(
        run_id=run_id,
        answer=final.answer,
        verified=final.verified,
        steps=steps,
        usage=usage,
        status=final.status,
        reason=final.reason,
        boxed_answer=boxed_answer(task, final.answer),
        messages=final.messages,
    )


def run_sync(
    task: str,
    *,
    model: Model,
    toolsets: Sequence[Toolset] = (),
    verifier: Verifier | None = None,
    settings: RunSettings | None = None,
    hooks: RunHooks | None = None,
    run_id: str | None = None,
    history: Sequence[Message] = (),
) -> RunResult:
    """`run()` for code that is not async.

    Each call runs its own event loop, so toolsets are entered (their servers started) anew.

    Raises:
        UserError: the task is empty or tool names collide.
        RunLimitExceeded: `max_steps` model calls gave no accepted answer.
        ModelError: the model backend failed.
    """

    async def main() -> RunResult:
        return await run(
            task,
            model=model,
            toolsets=toolsets,
            verifier=verifier,
            settings=settings,
            hooks=hooks,
            run_id=run_id,
            history=history,
        )

    return anyio.run(main)


def _check_task(task: str) -> None:
    if not task.strip():
        raise UserError("The task is empty. Say what the agent should do.", field="task")
    try:
        task.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: undecodable bytes, e.g. from argv
        raise UserError(
            f"The task is not valid text (character {exc.start + 1} is a lone surrogate, "
            f"{task[exc.start]!r}). Decode it as UTF-8 first.",
            field="task",
        ) from None


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


def _unusable_answer(response: ModelResponse) -> str | None:
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
