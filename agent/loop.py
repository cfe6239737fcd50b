"""The agent loop: model → tool calls → results → … → verified final answer."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import anyio

from verity._turns import (
    check_arguments,
    model_turn,
    out_of_steps,
    settle,
    start_run,
    tool_turn,
    unusable_answer,
    verify_turn,
)
from verity.answers import boxed_answer
from verity.errors import UserError
from verity.hooks import RunHooks
from verity.messages import FinalStep, Message, ModelStep, RunResult, Step, Usage, VerifyStep
from verity.models.base import Model
from verity.settings import RunSettings
from verity.tools.toolset import Toolset
from verity.verify import Verifier

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
    run_id = run_id or new_run_id()
    state = await start_run(task, model, toolsets, verifier, settings, hooks, run_id, history)
    try:
        for step in range(1, settings.max_steps + 1):
            response = await model_turn(state, step)
            yield ModelStep(step=step, response=response)
            if response.tool_calls:
                tools = await tool_turn(state, step, response)
                yield tools
                await check_arguments(state, tools)
            elif problem := unusable_answer(response):
                state.messages.append(Message(role="user", content=problem))
            else:
                verdict = await verify_turn(state, step, response)
                yield VerifyStep(step=step, verdict=verdict)
                if (ending := settle(state, step, response, verdict)) is not None:
                    yield ending
                    return
        yield out_of_steps(state)
    except anyio.get_cancelled_exc_class():
        state.status, state.error = "cancelled", "The run was cancelled."
        raise
    except Exception as exc:
        if state.status != "limit_exceeded":
            state.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await hooks.on_run_end(state.ended())


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
