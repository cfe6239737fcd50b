"""The parts an Agent is put together from: its verifier, its approved MCP toolset, their log."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import platformdirs

from verity.errors import UserError
from verity.hooks import RunHooks
from verity.mcp_config import MCPConfig
from verity.models.llama_cpp import LlamaCppModel
from verity.settings import RunSettings
from verity.solver import seeded_solver
from verity.tools.approval import (
    ApprovalGate,
    ApprovalListener,
    ApprovalPolicy,
    ApprovalStore,
    Asker,
    WithheldListener,
)
from verity.tools.mcp._names import allow_patterns
from verity.tools.mcp._stderr import server_log
from verity.tools.mcp._types import ElicitationHandler, SamplingHandler
from verity.tools.toolset import Toolset
from verity.verify import Verifier, build_verifier

if TYPE_CHECKING:
    from verity.tools.mcp import MCPToolset

__all__ = [
    "CONSENSUS_TEMPERATURE",
    "Approvals",
    "approval_gate",
    "approved_toolset",
    "run_verifier",
    "server_log",
]

CONSENSUS_TEMPERATURE = 0.7
"""Consensus needs samples that can differ: a greedy model samples them at this temperature."""


@dataclass(frozen=True)
class Approvals:
    """Who answers for MCP tools that need a person's approval (design D9).

    With nobody to ask (the default) such tools are withheld: the model does not see them, and
    the trace records why. Patterns that allow tools without asking are `AgentConfig.allow`.
    """

    ask: Asker | None = None
    """Asked before a tool that needs approval runs: `once`, `always` or `deny`."""
    elicitation: ElicitationHandler | None = None
    """Answers a server's request for input from the user (MCP elicitation)."""
    on_decision: ApprovalListener | None = None
    """Told every approval decision (allowed, denied, withheld)."""
    on_withheld: WithheldListener | None = None
    """Told the tools withheld at a listing, e.g. to say it out loud."""


def run_verifier(
    spec: str,
    *,
    model: LlamaCppModel,
    judge: LlamaCppModel,
    toolsets: Sequence[Toolset],
    hooks: RunHooks,
    max_steps: int,
    system_prompt: str | None = None,
) -> Verifier | None:
    """The verifier a `--verify` spec names, None for `none`.

    Consensus samples (each its own run, traced through `hooks`) and self-check both run on
    `judge`, so the run's own KV prefix survives; `model`'s temperature sets the samples'.

    Raises:
        UserError: the spec is malformed.
    """
    temperature = model.settings.temperature or CONSENSUS_TEMPERATURE
    solve = seeded_solver(
        lambda seed: judge.with_sampling(seed=seed, temperature=temperature),
        toolsets=toolsets,
        settings=RunSettings(max_steps=max_steps, system_prompt=system_prompt),
        hooks=hooks,  # each consensus sample is a run in the trace, linked to this one
    )
    return build_verifier(spec, model=judge, solve=solve, toolsets=toolsets)


def approved_toolset(
    config: MCPConfig,
    *,
    ask: Asker | None,
    elicitation: ElicitationHandler | None,
    errlog: TextIO,
    sampling: SamplingHandler | None = None,
    allow: Sequence[str] = (),
    only: Collection[str] | None = None,
    on_decision: ApprovalListener | None = None,
    on_withheld: WithheldListener | None = None,
) -> MCPToolset:
    """The configured servers (or those named in `only`) behind the user's approval gate.

    Raises:
        UserError: the stored approvals file is broken.
    """
    from verity.tools.mcp import MCPToolset  # the MCP SDK (~1 s): once the model is loading

    gate = approval_gate(
        config, ask=ask, allow=allow, on_decision=on_decision, on_withheld=on_withheld
    )
    servers = [s for s in config.servers if only is None or s.name in only]
    skipped = {name: why for name, why in config.skipped.items() if only is None or name in only}
    return MCPToolset(
        servers,
        errlog=errlog,
        elicitation=elicitation,
        sampling=sampling,
        approval=gate,
        skipped=skipped,
    )


def approval_gate(
    config: MCPConfig,
    *,
    ask: Asker | None,
    allow: Sequence[str],
    on_decision: ApprovalListener | None = None,
    on_withheld: WithheldListener | None = None,
) -> ApprovalGate:
    """The approval gate of a run: the config's and the caller's allow patterns, and the
    "always" answers stored in the user config directory.

    Raises:
        UserError: the stored approvals file is broken.
    """
    store_path = Path(platformdirs.user_config_dir("verity")) / "approvals.json"
    try:
        store = ApprovalStore(store_path)
    except ValueError as exc:
        raise UserError(f"{exc}. Fix or delete it.", field="approvals") from None
    allowed = [*config.approved, *allow_patterns(allow, [s.name for s in config.servers])]
    return ApprovalGate(
        ApprovalPolicy(),
        ask=ask,
        allow=allowed,
        store=store,
        on_decision=on_decision,
        on_withheld=on_withheld,
    )
