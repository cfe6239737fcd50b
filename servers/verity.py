"""verity: Verity itself as an MCP server, for Claude Desktop, IDEs and other agents.

`verity serve` (or `python -m verity.servers.verity`) runs it over stdio, `--http` over
streamable HTTP; both protocol eras (2025-11-25 and 2026-07-28) on either. Tools: `run_agent`
(a task in; answer, verification, run id, steps and tokens out, with progress notifications as
steps happen), and the read-only `list_runs` and `get_run` over the trace. Each run is also the
resource `verity://runs/{run_id}`. Cancelling a `run_agent` call cancels its run, which the
trace records as `cancelled`; so does an HTTP client that goes away before its answer came
(a run nobody can receive ends rather than hold the shared model).
"""

# No `from __future__ import annotations`: MCPServer reads the tools' annotations at runtime.
import importlib.metadata
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, Field

from verity.servers._approvals import ClientApprovals
from verity.servers._client_gone import client_gone
from verity.servers._detached import DetachedRun
from verity.servers._run_hooks import ProgressReporter
from verity.servers._served_agent import RunOptions, RunOutcome, ServedAgent, run_served
from verity.trace.store import TraceStore
from verity.verify import VERIFY_SPECS

__all__ = ["RunList", "RunOutcome", "RunSummary", "ServedAgent", "build_server", "main"]

INSTRUCTIONS = (
    "Verity runs a tool-using agent on a locally hosted model. Give run_agent a self-contained "
    "task; it answers with the result, whether a verifier accepted it, and a run id. Runs are "
    "queued {at_once}. list_runs and get_run (or the resource verity://runs/{{run_id}}) read "
    "the recorded runs: every step, model call, tool call and verdict."
)


class RunSummary(BaseModel):
    """One recorded run, in brief."""

    run_id: str
    task: str
    status: str = Field(
        description="running, completed, failed, limit_exceeded, cancelled or interrupted"
    )
    answer: str | None
    verified: bool | None = Field(description="null: no verifier checked an answer")
    model: str
    started_at: str
    duration_s: float | None


class RunList(BaseModel):
    """Recorded runs, newest first."""

    runs: list[RunSummary]


def _version() -> str:
    try:
        return importlib.metadata.version("verity-agent")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _run_agent_annotations(agent: ServedAgent) -> ToolAnnotations:
    """Honest hints: read-only only when every tool a run may call is (the built-in calculator);
    with upstream MCP servers a run may write, delete, and reach the outside world."""
    writes = agent.may_write
    return ToolAnnotations(
        title="Run a Verity agent",
        read_only_hint=not writes,
        destructive_hint=writes,
        idempotent_hint=False,
        open_world_hint=writes,
    )


_TASK = "what the agent should do, self-contained"
_VERIFY = f"check the answer first: {VERIFY_SPECS}"
_READS = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
_T = TypeVar("_T")


def build_server(agent: ServedAgent) -> MCPServer:
    """The MCP server that hands tasks to `agent` and reads its trace."""

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[None]:
        async with agent.detached.hosting():
            yield

    server = MCPServer(
        "verity",
        version=_version(),
        instructions=INSTRUCTIONS.format(at_once=_at_once(agent.max_concurrent)),
        log_level="WARNING",
        lifespan=lifespan,
    )
    store = agent.store
    servers_note = (
        f" MCP servers it may use: {', '.join(agent.mcp_servers)} (all when not named)."
        if agent.mcp_servers
        else " No MCP servers are configured: the agent has a calculator."
    )

    @server.tool(
        description=(
            "Hand a task to Verity's agent: it plans, calls tools, checks its answer and returns "
            "it with the verdict and the run id. Progress is reported as steps happen."
            + servers_note
        ),
        annotations=_run_agent_annotations(agent),
    )
    async def run_agent(
        task: Annotated[str, Field(min_length=1, description=_TASK)],
        ctx: Context,
        verify: Annotated[
            str | None, Field(description=f"{_VERIFY} (default {agent.verify!r})")
        ] = None,
        max_steps: Annotated[
            int | None, Field(ge=1, description=f"model calls allowed (default {agent.max_steps})")
        ] = None,
        servers: Annotated[
            list[str] | None, Field(description="configured MCP servers the agent may use (all)")
        ] = None,
    ) -> RunOutcome | InputRequiredResult:
        async def report(progress: float, message: str) -> None:
            await ctx.report_progress(progress, None, message)

        if ctx.request_state is not None:  # a 2026-07-28 retry that answers the run's question
            return await agent.detached.resume(ctx.request_state, ctx.input_responses or {}, report)
        options = RunOptions(verify=verify, max_steps=max_steps, servers=servers)
        if _asks_between_rounds(ctx, agent, servers):

            async def work(detached: DetachedRun) -> RunOutcome:
                approvals = ClientApprovals(ctx, timeout=agent.approval_timeout, detached=detached)
                return await run_served(
                    agent,
                    task,
                    options,
                    progress=ProgressReporter(detached.report),
                    approvals=approvals,
                )

            return await agent.detached.start(work, report)
        approvals = ClientApprovals(ctx, timeout=agent.approval_timeout)
        progress = ProgressReporter(report)
        return await _while_client_waits(
            ctx, lambda: run_served(agent, task, options, progress=progress, approvals=approvals)
        )

    @server.tool(description="The latest recorded runs, newest first.", annotations=_READS)
    async def list_runs(
        limit: Annotated[int, Field(ge=1, le=200, description="how many runs")] = 20,
    ) -> RunList:
        rows = await anyio.to_thread.run_sync(lambda: store.runs(limit=limit))
        return RunList(runs=[_summary(row) for row in rows])

    @server.tool(
        description="One recorded run with its steps, model calls, tool calls and verdicts.",
        annotations=_READS,
    )
    async def get_run(
        run_id: Annotated[str, Field(description="an id from list_runs")],
    ) -> dict[str, Any]:
        return await _record(store, run_id, ToolError)

    @server.resource(
        "verity://runs/{run_id}",
        name="run",
        title="A recorded Verity run",
        description="A run with its steps, model calls, tool calls and verdicts (JSON).",
        mime_type="application/json",
    )
    async def run_resource(run_id: str) -> str:
        return json.dumps(await _record(store, run_id, ResourceNotFoundError))

    @server.resource(
        "verity://runs",
        name="runs",
        title="Recent Verity runs",
        description="The 20 latest runs, newest first (JSON).",
        mime_type="application/json",
    )
    async def recent_runs() -> str:
        rows = await anyio.to_thread.run_sync(lambda: store.runs(limit=20))
        return RunList(runs=[_summary(row) for row in rows]).model_dump_json()

    @server.prompt(title="Verified answer")
    def verified_answer(question: str) -> str:
        """Answer a question with Verity, verifying the answer before it is given."""
        return (
            'Use the run_agent tool with verify set to "self" to answer the question below. '
            "Report the answer, whether it was verified (and the verdict), and the run id.\n\n"
            f"Question: {question}"
        )

    @server.prompt(title="Explain a run")
    def explain_run(run_id: str) -> str:
        """Explain what Verity's agent did in one recorded run."""
        return (
            f"Read the Verity run verity://runs/{run_id} (or call get_run). Explain step by step "
            "what the agent did: what the model decided, which tools it called with which "
            "arguments and what came back, and whether the answer was verified, and why."
        )

    return server


async def _while_client_waits(ctx: Context, work: Callable[[], Awaitable[_T]]) -> _T:
    """`work()`, cancelled if the HTTP client leaves first: nobody could receive its result.

    Raises:
        ToolError: the client went away (the run is in the trace as cancelled).
    """
    gone = client_gone(ctx.request_context.request)
    if gone is None:  # stdio: the server ends with its client
        return await work()
    done: list[_T] = []
    failed: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await gone.wait()
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            done.append(await work())
        except Exception as exc:  # noqa: BLE001 - raised below as itself, not in an ExceptionGroup
            failed.append(exc)
        group.cancel_scope.cancel()
    if failed:
        raise failed[0]
    if not done:
        raise ToolError("The client went away before the answer; the run was cancelled.")
    return done[0]


def _at_once(runs: int) -> str:
    return "one at a time" if runs == 1 else f"and run up to {runs} at a time"


def _asks_between_rounds(ctx: Context, agent: ServedAgent, servers: list[str] | None) -> bool:
    """Whether the run must go on in the background so that its approval questions can reach
    the client between the rounds of a 2026-07-28 call (which has no channel back while open)."""
    capabilities = ctx.client_capabilities
    may_ask = bool(agent.mcp_servers) and servers != []
    can_answer = capabilities is not None and capabilities.elicitation is not None
    return may_ask and can_answer and not ctx.session.can_send_request and agent.detached.available


def _summary(row: dict[str, Any]) -> RunSummary:
    verified = row.get("verified")
    return RunSummary(
        run_id=row["id"],
        task=row["task"],
        status=row["status"],
        answer=row["answer"],
        verified=None if verified is None else bool(verified),
        model=row["model"] or "",
        started_at=row["started_at"],
        duration_s=row["duration_s"],
    )


async def _record(store: TraceStore, run_id: str, missing: type[Exception]) -> dict[str, Any]:
    record = await anyio.to_thread.run_sync(store.run, run_id)
    if record is None:
        raise missing(f"No run {run_id!r} in the trace. List the runs with list_runs.")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m verity.servers.verity [OPTIONS]`: the same as `verity serve [OPTIONS]`."""
    from verity.cli import main as cli_main  # the command line owns the options and the model

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
