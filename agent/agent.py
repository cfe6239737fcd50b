"""`Agent`: a model, tools, a verifier and a trace put together once, then run on many tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, Self, TextIO

import anyio

from verity._assembly import Approvals, approved_toolset, run_verifier, server_log
from verity._concurrency import RunTurns
from verity.agent_config import AgentConfig, agent_models, build_config, read_mcp_config
from verity.errors import UserError
from verity.hooks import CompositeHooks, RunHooks
from verity.loop import iter_run, new_run_id, run
from verity.mcp_config import MCPConfig, model_sampling_handler
from verity.messages import Message, RunResult, Step
from verity.models.base import DeltaKind, Model
from verity.models.build import Loader
from verity.models.embedded import AssemblyProgress
from verity.models.llama_cpp import LlamaCppModel
from verity.settings import RunSettings, default_trace_path
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset, Toolset
from verity.trace._provenance import versions
from verity.trace.otlp import live_export
from verity.trace.recorder import TraceRecorder
from verity.trace.store import TraceStore
from verity.verify import AllOf, Verifier, build_verifier

__all__ = ["Agent", "AgentConfig", "Approvals"]


class Agent:
    """A model with its tools, verifier and trace, built once and run on many tasks.

    The model loads on the first run and stays loaded for the next ones (a local model reuses
    its KV prefix); MCP servers start once while the agent is entered. Every run is traced to
    the database `verity run` uses unless `trace=False`.

    ```python
    async with Agent(verify="self") as agent:
        result = await agent.run("What is 1234 * 5678 + 17?")
    ```

    Args:
        config: The settings; keyword `options` (`AgentConfig` fields) override its fields.
        model: A model reference (as `AgentConfig.model`), or a `Model` to use as it is.
        toolsets: The agent's tools (default: Verity's calculator); MCP servers from
            `mcp_config` (or `mcp`) are added to them.
        mcp: MCP servers already loaded, instead of reading `config.mcp_config`.
        verifiers: Checks of your own, each of which must also accept an answer.
        approvals: Who approves MCP tools that need it (default: nobody; they are withheld).
        hooks: Told of every run's events (progress displays, metrics).
        on_delta: Called with each piece of a local model's text as it is generated.
        on_load: Shows a local model's loading: called with a label and the loading function.
        on_assembly: Told how the first assembly of a bundled model from its parts goes.
        **options: `AgentConfig` fields.

    Raises:
        UserError: an option is invalid, the model or the MCP config cannot be found, or the
            verify spec is malformed; the message names what to fix.
    """

    def __init__(
        self,
        config: AgentConfig | None = None,
        /,
        *,
        model: str | Model | None = None,
        toolsets: Sequence[Toolset] | None = None,
        mcp: MCPConfig | None = None,
        verifiers: Sequence[Verifier] = (),
        approvals: Approvals | None = None,
        hooks: Sequence[RunHooks] = (),
        on_delta: Callable[[DeltaKind, str], None] | None = None,
        on_load: Loader | None = None,
        on_assembly: AssemblyProgress | None = None,
        **options: Any,
    ) -> None:
        if isinstance(model, str):
            options["model"] = model
        self.config = build_config(config, options)
        self.mcp = mcp if mcp is not None else read_mcp_config(self.config.mcp_config)
        self.model, self._judge = agent_models(
            self.config, model, on_delta=on_delta, on_load=on_load, on_assembly=on_assembly
        )
        self._owns_model = model is None or isinstance(model, str)
        self._run_turns = RunTurns(self.model)  # an in-process model takes one run at a time
        self._toolsets = list(toolsets) if toolsets is not None else [FunctionToolset([calculator])]
        self._verifiers = list(verifiers)
        self._approvals = approvals or Approvals()
        self._hooks = list(hooks)
        self.check_verify(self.config.verify)  # a bad spec fails now, not at the first run
        configured = bool(self.mcp.servers or self.mcp.skipped)
        self._errlog: TextIO | None = None
        self._mcp_toolset: Toolset | None = None
        if configured:
            self._load_model_early()
            try:
                self._errlog = server_log()
                self._mcp_toolset = self._approved(self._approvals)
            except BaseException:
                self._close_models()  # and the load begun above
                if self._errlog is not None:
                    self._errlog.close()
                raise
        self.store = self._store()
        """The trace database; None with `trace=False`."""
        self.recorder = TraceRecorder(self.store) if self.store is not None else None
        """Writes every run to `store`; its `failure` says why a trace is incomplete."""
        self._stack: AsyncExitStack | None = None
        self._closed = False

    @property
    def toolsets(self) -> list[Toolset]:
        """The tools every run gets: the agent's own and the configured MCP servers'."""
        return [*self._toolsets, *([self._mcp_toolset] if self._mcp_toolset else [])]

    @property
    def mcp_servers(self) -> list[str]:
        """Names of the configured MCP servers."""
        return [server.name for server in self.mcp.servers]

    async def __aenter__(self) -> Self:
        """Start the toolsets (MCP servers) once, for every run until the agent is left."""
        stack = AsyncExitStack()
        try:
            for toolset in self.toolsets:
                await stack.enter_async_context(toolset)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the toolsets, free the model and close the trace."""
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            await self.aclose()

    async def run(
        self,
        task: str,
        *,
        run_id: str | None = None,
        verify: str | None = None,
        max_steps: int | None = None,
        servers: Sequence[str] | None = None,
        approvals: Approvals | None = None,
        hooks: Sequence[RunHooks] = (),
        history: Sequence[Message] = (),
        labels: Mapping[str, str] | None = None,
    ) -> RunResult:
        """Run `task` to its end and return the result (the answer, whether it was verified,
        the steps, the usage and the run's id in the trace).

        Args:
            task: What the agent should do.
            run_id: The run's id in the trace (default: a new one).
            verify: This run's verify spec instead of the agent's.
            max_steps: This run's model calls instead of the agent's.
            servers: The configured MCP servers this run may use (default: all of them).
            approvals: Who approves this run's MCP tools instead of the agent's.
            hooks: Told of this run's events, besides the agent's hooks.
            history: An earlier run's conversation (`RunResult.messages`) that the task
                continues; on a local model only the new tokens are evaluated.
            labels: Recorded with the run in the trace (`config.run.labels`), besides the
                settings' own.

        Raises:
            UserError: the task is empty, the verify spec is malformed, or tool names collide.
            RunLimitExceeded: `max_steps` model calls gave no accepted answer.
            ModelError: the model backend failed.
        """
        toolsets = self._run_toolsets(servers, approvals)
        async with self._run_turns.turn():
            return await run(
                task,
                model=self.model,
                toolsets=toolsets,
                verifier=self._verifier(verify, toolsets),
                settings=self._settings(max_steps, labels),
                hooks=self._run_hooks(hooks),
                run_id=run_id,
                history=history,
            )

    async def iter_run(
        self,
        task: str,
        *,
        run_id: str | None = None,
        verify: str | None = None,
        max_steps: int | None = None,
        hooks: Sequence[RunHooks] = (),
    ) -> AsyncIterator[Step]:
        """Run `task` and yield each step as it happens (the last is a `FinalStep`).

        Use it inside `async with agent`, where the MCP servers are already running; break out
        of it only through `contextlib.aclosing`.

        Raises:
            UserError: the task is empty, the verify spec is malformed, or tool names collide.
            RunLimitExceeded: `max_steps` model calls gave no accepted answer.
            ModelError: the model backend failed.
        """
        toolsets = self.toolsets
        async with AsyncExitStack() as stack:
            for toolset in toolsets:
                await stack.enter_async_context(toolset)
            async for step in iter_run(
                task,
                model=self.model,
                toolsets=toolsets,
                verifier=self._verifier(verify, toolsets),
                settings=self._settings(max_steps),
                hooks=self._run_hooks(hooks),
                run_id=run_id or new_run_id(),
            ):
                yield step

    def run_sync(self, task: str, **options: Any) -> RunResult:
        """`run()` for code that is not async: the model stays loaded for the next call, and
        MCP servers start for each call. `close()` frees the model.

        Raises:
            UserError: the task is empty, the verify spec is malformed, or tool names collide.
            RunLimitExceeded: `max_steps` model calls gave no accepted answer.
            ModelError: the model backend failed.
        """

        async def main() -> RunResult:
            return await self.run(task, **options)

        return anyio.run(main)

    def check_verify(self, spec: str) -> None:
        """Fail now if `spec` is not a verify spec this agent can use.

        Raises:
            UserError: the spec is malformed, or names consensus with a model that cannot sample.
        """
        self._verifier(spec, self._toolsets, RunHooks())

    def close(self) -> None:
        """Free the model the agent loaded and close the trace; safe to call more than once."""
        self._close_models()
        self._close_files()

    def _close_models(self) -> None:
        if self._owns_model and isinstance(self.model, LlamaCppModel):
            self.model.close()  # and the judge, when it is on a context of the model's
        if self._judge is not None and self._judge is not self.model:
            self._judge.close()

    async def aclose(self) -> None:
        """`close()` without blocking the event loop while a generation stops."""
        with anyio.CancelScope(shield=True):
            if self._owns_model:
                aclose = getattr(self.model, "aclose", None)
                if aclose is not None:
                    await aclose()
            if self._judge is not None:
                await self._judge.aclose()
            self._close_files()

    def _load_model_early(self) -> None:
        """Start loading an in-process model the agent owns, in the background: it loads while
        the MCP SDK is imported (~1 s) and the servers start, instead of after them."""
        if self._owns_model and isinstance(self.model, LlamaCppModel):
            self.model.start_loading()

    def _close_files(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.store is not None:
            self.store.close()
        if self._errlog is not None:
            self._errlog.close()

    def _store(self) -> TraceStore | None:
        if not self.config.trace:
            return None
        return TraceStore(self.config.trace_db or default_trace_path())

    def _approved(self, approvals: Approvals, servers: Sequence[str] | None = None) -> Toolset:
        sampling = model_sampling_handler(self.model) if self.config.mcp_sampling else None
        assert self._errlog is not None
        return approved_toolset(
            self.mcp,
            ask=approvals.ask,
            elicitation=approvals.elicitation,
            errlog=self._errlog,
            sampling=sampling,
            allow=self.config.allow,
            only=servers,
            on_decision=approvals.on_decision,
            on_withheld=approvals.on_withheld,
        )

    def _run_toolsets(
        self, servers: Sequence[str] | None, approvals: Approvals | None
    ) -> list[Toolset]:
        """The agent's toolsets, or, for a run with servers or approvals of its own, a fresh
        MCP toolset with just those (started for the run), as for any run outside `async with`."""
        if servers is None and approvals is None and (self._stack or self._mcp_toolset is None):
            return self.toolsets
        unknown = sorted(set(servers or ()) - set(self.mcp_servers))
        if unknown:
            known = ", ".join(self.mcp_servers) or "none are configured"
            raise UserError(
                f"Unknown MCP server {', '.join(map(repr, unknown))}. Servers: {known}.",
                field="servers",
            )
        if servers is not None and not servers:
            return list(self._toolsets)
        return [*self._toolsets, self._approved(approvals or self._approvals, servers)]

    def _settings(
        self, max_steps: int | None, labels: Mapping[str, str] | None = None
    ) -> RunSettings:
        settings = self.config.settings
        if labels:
            settings = settings.model_copy(update={"labels": {**settings.labels, **labels}})
        if max_steps is None:
            return settings
        if max_steps < 1:
            raise UserError(f"max_steps must be at least 1, not {max_steps}.", field="max_steps")
        return settings.model_copy(update={"max_steps": max_steps})

    def _run_hooks(self, hooks: Sequence[RunHooks]) -> RunHooks:
        """The recorder, the live OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (after
        the recorder: it reads the run back), then the agent's and the run's own hooks."""
        traced: list[RunHooks] = []
        if self.recorder is not None:
            export = live_export(self.recorder.store, version=versions()["verity"])
            traced = [self.recorder, *([export] if export is not None else [])]
        return CompositeHooks([*traced, *self._hooks, *hooks])

    def _verifier(
        self, spec: str | None, toolsets: Sequence[Toolset], hooks: RunHooks | None = None
    ) -> Verifier | None:
        """The spec's verifier (its consensus samples traced through `hooks`, default: as runs of
        their own in the agent's trace) and the agent's own checks, all of which must accept."""
        spec = self.config.verify if spec is None else spec
        model, judge, settings = self.model, self._judge, self.config.settings
        if isinstance(model, LlamaCppModel) and judge is not None:
            built = run_verifier(
                spec,
                model=model,
                judge=judge,
                toolsets=toolsets,
                hooks=hooks or self.recorder or RunHooks(),
                max_steps=settings.max_steps,
                system_prompt=settings.system_prompt,
            )
        else:
            built = build_verifier(spec, model=model, toolsets=toolsets)
        checks = [*self._verifiers, *([built] if built is not None else [])]
        if len(checks) > 1:
            return AllOf(*checks)
        return checks[0] if checks else None
