"""The agent behind `run_agent`: one shared model, a queue in front of it, a traced run per call.

Each call's run has its own conversation, trace rows and MCP sessions (the upstream servers are
started for the run, so their state and approvals stay the caller's); up to `max_concurrent` go
at once on a server backend, one at a time on the in-process model.
"""

# No `from __future__ import annotations`: pydantic and MCPServer read annotations at runtime.
import re
import sys
from dataclasses import dataclass, field
from typing import Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from verity._concurrency import runs_at_once
from verity.agent import Agent, Approvals
from verity.errors import ModelError, RunLimitExceeded, UserError
from verity.loop import new_run_id
from verity.models.base import Model
from verity.pricing import Price, load_prices
from verity.servers._approvals import ClientApprovals
from verity.servers._detached import DetachedRuns
from verity.servers._run_hooks import ProgressReporter, RunTally
from verity.servers._run_queue import RunQueue, ServerBusy
from verity.trace.store import TraceStore
from verity.trace.usage import priced_usage

__all__ = ["RunOptions", "RunOutcome", "ServedAgent", "Tokens"]

MAX_VERIFY_SAMPLES = 10
"""Model runs (consensus samples, recomputations) one `run_agent` call may ask verification for."""


@dataclass
class ServedAgent:
    """What every `run_agent` call runs with: one `Agent` (its model shared by up to
    `max_concurrent` runs at once) and the server's limits. Whoever made the agent closes it
    once the server has stopped."""

    agent: Agent
    """Runs each call; it must trace (`list_runs` and `get_run` read its trace)."""
    max_steps_limit: int = 50
    """The most a call may ask for (at least the agent's `max_steps`)."""
    max_queue: int = 4
    """Calls that may wait behind the running ones; more are refused as busy."""
    max_concurrent: int = 1
    """Runs going at once on a server backend; the in-process model runs one at a time
    whatever this says (it is set to 1)."""
    approval_timeout: float = 300.0
    """Seconds a person has to answer an approval question before the call is denied."""
    prices: dict[str, Price] = field(default_factory=load_prices)
    """The price table a run's `cost_usd` is figured from (default: Verity's and the user's)."""
    queue: RunQueue = field(init=False)
    detached: "DetachedRuns[RunOutcome]" = field(init=False)
    """Runs going on between the rounds of a 2026-07-28 call that asks for approvals."""

    def __post_init__(self) -> None:
        if self.agent.store is None:
            raise UserError(
                "A served agent must trace its runs: build it with trace=True.", field="trace"
            )
        if self.max_concurrent < 1:
            raise UserError(
                f"max_concurrent must be at least 1, not {self.max_concurrent}.",
                field="max_concurrent",
            )
        self.max_concurrent = min(self.max_concurrent, runs_at_once(self.model) or sys.maxsize)
        self.queue = RunQueue(self.max_queue, max_running=self.max_concurrent)
        self.detached = DetachedRuns(timeout=self.approval_timeout)
        self.max_steps_limit = max(self.max_steps_limit, self.max_steps)

    @property
    def model(self) -> Model:
        """The agent's model, loaded on first use."""
        return self.agent.model

    @property
    def store(self) -> TraceStore:
        """Where runs are recorded, and where `list_runs` and `get_run` read them."""
        assert self.agent.store is not None  # checked in __post_init__
        return self.agent.store

    @property
    def mcp_servers(self) -> list[str]:
        """Names of the configured upstream MCP servers a run may use."""
        return self.agent.mcp_servers

    @property
    def max_steps(self) -> int:
        """A call's `max_steps` when it names none."""
        return self.agent.config.settings.max_steps

    @property
    def verify(self) -> str:
        """The verify spec a call gets when it names none."""
        return self.agent.config.verify

    @property
    def may_write(self) -> bool:
        """Whether a run may call tools that change things (any upstream server may)."""
        return bool(self.mcp_servers)


class RunOptions(BaseModel):
    """The optional parts of a `run_agent` call."""

    verify: str | None = None
    max_steps: int | None = None
    servers: list[str] | None = None


class Tokens(BaseModel):
    """Tokens the run's model calls used."""

    input: int = Field(description="prompt tokens, summed over the model calls")
    output: int = Field(description="generated tokens, summed over the model calls")


StatusOfOutcome = Literal[
    "answered", "unverified", "rejected", "tools_unavailable", "limit_exceeded"
]
"""A run's `AnswerStatus`, or `limit_exceeded` when it reached no answer."""


class RunOutcome(BaseModel):
    """The result of `run_agent`."""

    run_id: str = Field(description="the run in the trace: get_run or verity://runs/{run_id}")
    status: StatusOfOutcome = Field(
        description="answered: the answer was accepted; unverified: the verifier did not "
        "confirm it; rejected: it is no answer (empty, a refusal, a tool's error) or states "
        "facts no tool result holds; tools_unavailable: an MCP server did not start or all "
        "its tools were withheld, so it may be made up; limit_exceeded: max_steps ran out. "
        "Only answered is a success"
    )
    reason: str | None = Field(
        default=None, description="why the status is not answered, in one line"
    )
    answer: str | None = Field(description="the final answer; null when the run found none")
    verified: bool | None = Field(
        description="true: a verifier accepted the answer; false: one checked it and did not; "
        "null: nothing verified it (verification off, or no answer)"
    )
    verdict: str = Field(description="one sentence on the verification")
    steps: int = Field(description="model calls the run made")
    tokens: Tokens
    cost_usd: dict[str, float] | None = Field(
        description="what the run's tokens would have cost on each priced API, in US dollars "
        "(the price table of `verity stats --prices`); null when the backend counted no tokens"
    )
    withheld: list[str] = Field(
        description="tool calls that did not run for want of a person's approval, with why"
    )


async def run_served(
    agent: ServedAgent,
    task: str,
    options: RunOptions,
    *,
    progress: ProgressReporter,
    approvals: ClientApprovals,
) -> RunOutcome:
    """Queue for the model, run the task with a trace, and tell how it went.

    Raises:
        ToolError: bad options, a busy server, or a failed model; the message says which.
    """
    servers = _servers(agent, options.servers)
    max_steps = options.max_steps or agent.max_steps
    if not 1 <= max_steps <= agent.max_steps_limit:
        limit = agent.max_steps_limit
        raise ToolError(f"max_steps must be between 1 and {limit}, not {max_steps}.")
    spec = options.verify or agent.verify
    _check_samples(spec)
    try:
        agent.agent.check_verify(spec)
    except UserError as exc:
        raise ToolError(str(exc)) from None
    run_id = new_run_id()
    tally = RunTally(run_id)
    asked = Approvals(
        ask=approvals.asker, elicitation=approvals.forward, on_decision=approvals.note
    )

    async def queued(ahead: int) -> None:
        await progress.say(f"queued: {ahead} run{'' if ahead == 1 else 's'} ahead")

    answer: str | None = None
    status: StatusOfOutcome = "limit_exceeded"
    reason: str | None = None
    try:
        async with agent.queue.turn(on_wait=queued):
            result = await agent.agent.run(
                task,
                run_id=run_id,
                verify=spec,
                max_steps=max_steps,
                servers=servers,
                approvals=asked,
                hooks=[tally, progress],
            )
            answer, status, reason = result.answer, result.status, result.reason
    except ServerBusy as exc:
        raise ToolError(str(exc)) from None
    except RunLimitExceeded as exc:
        reason = str(exc)  # the run and its steps are in the trace
    except (ModelError, UserError) as exc:
        raise ToolError(f"{exc} (run {run_id} is in the trace)") from None
    return RunOutcome(
        run_id=run_id,
        status=status,
        reason=reason,
        answer=answer,
        verified=tally.verified,
        verdict=tally.verdict_summary(spec),
        steps=tally.steps,
        tokens=Tokens(input=tally.usage.prompt_tokens, output=tally.usage.completion_tokens),
        cost_usd=priced_usage(tally.usage, agent.prices),
        withheld=approvals.withheld,
    )


def _servers(agent: ServedAgent, chosen: list[str] | None) -> list[str]:
    if chosen is None:
        return list(agent.mcp_servers)
    unknown = sorted(set(chosen) - set(agent.mcp_servers))
    if unknown:
        known = ", ".join(agent.mcp_servers) or "none are configured"
        raise ToolError(f"Unknown MCP server {', '.join(map(repr, unknown))}. Servers: {known}.")
    return list(dict.fromkeys(chosen))


def _check_samples(spec: str) -> None:
    """A caller may not make one call hold the shared model for a great many verifying runs."""
    for kind, samples in re.findall(r"(self|recompute|consensus):(\d+)", spec.lower()):
        if int(samples) > MAX_VERIFY_SAMPLES:
            raise ToolError(
                f"verify asks for {samples} {kind} samples; this server runs at most "
                f"{MAX_VERIFY_SAMPLES} per call."
            )
