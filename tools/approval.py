"""Approval (design D9): allow, ask or deny each `server__tool`; MCPToolset and any toolset.

Rules are glob patterns matched in order (`time__*`, `*__delete_*`); the first match decides,
then the allow-list (`--allow`, a config's `alwaysAllow`). Unmatched tools that are read-only by
`is_read_only()` (MCP hints count only from a server the user trusts) are allowed; anything else
(unannotated tools count as destructive, per the spec) is asked for, and withheld when nobody
can answer. An approval given "always" is stored with a hash of the tool's definition, so a
tool whose description or schema changed afterwards must be approved again. Every decision is
reported as an `ApprovalDecision`: to the gate's own listener and to the one the running loop
installs with `reporting_approvals()` (the trace).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from verity.tools._atomic import rewrite
from verity.tools.base import ToolError, ToolResult, ToolSpec, is_read_only
from verity.tools.toolset import Toolset

__all__ = [
    "Answer",
    "ApprovalDecision",
    "ApprovalGate",
    "ApprovalListener",
    "ApprovalPolicy",
    "ApprovalStore",
    "ApprovalToolset",
    "Asker",
    "Decision",
    "definition_hash",
    "WithheldListener",
    "reporting_approvals",
]

Decision = Literal["allow", "ask", "deny"]
Answer = Literal["once", "always", "deny"]
Asker = Callable[[ToolSpec, dict[str, Any]], Awaitable[Answer]]
"""Asks a person whether one call may run: once, always (stored), or deny."""


def definition_hash(spec: ToolSpec) -> str:
    """A stable hash of what the model and the user were shown about a tool."""
    shown: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
        "read_only": spec.read_only,
    }
    if spec.destructive:  # only when set, so approvals stored before the field stay valid
        shown["destructive"] = True
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which tools may run without asking."""

    rules: Sequence[tuple[str, Decision]] = ()
    """(glob pattern over `server__tool`, decision); the first match wins."""
    read_only: Decision = "allow"
    """Decision for unmatched tools marked read-only."""
    other: Decision = "ask"
    """Decision for every other unmatched tool (unannotated, writing or destructive)."""

    def decide(self, spec: ToolSpec) -> Decision:
        """The decision for one tool, before anyone is asked."""
        return self.explain(spec)[0]

    def rule_for(self, spec: ToolSpec) -> tuple[str, Decision] | None:
        """The first rule whose pattern matches the tool's name, if any."""
        for pattern, decision in self.rules:
            if fnmatch.fnmatchcase(spec.name, pattern):
                return pattern, decision
        return None

    def explain(self, spec: ToolSpec) -> tuple[Decision, By, str]:
        """The decision for one tool, what made it, and why."""
        if (rule := self.rule_for(spec)) is not None:
            return rule[1], "policy", f"rule {rule[0]!r}"
        if is_read_only(spec) and spec.protocol_read:
            return self.read_only, "protocol", f"an MCP {spec.protocol_read} request: a read"
        if is_read_only(spec):
            return self.read_only, "trust", "read-only, as declared by a trusted source"
        if spec.destructive:
            why = "declared destructive"
        elif spec.read_only:
            why = "its read-only hint comes from a server not marked trusted"
        else:
            why = "it may change things (not read-only)"
        return self.other, "policy", why


Outcome = Literal["allowed", "denied", "withheld"]
By = Literal["policy", "allow", "trust", "protocol", "user"]


@dataclass(frozen=True)
class ApprovalDecision:
    """One approval decision about a tool: for the trace, and to tell the person."""

    tool: str
    outcome: Outcome
    """`withheld`: not offered to the model; `allowed`/`denied`: one call."""
    by: By
    """What decided: the policy (rules, defaults), an allow pattern, trust in the tool's own
    read-only claim, the protocol (a resource or prompt read through the tools Verity adds), or
    the user (asked now, or an "always" answer stored earlier)."""
    reason: str
    arguments: dict[str, Any] | None = None
    """The call's arguments; None for a decision made while listing tools."""


ApprovalListener = Callable[[ApprovalDecision], Awaitable[None]]
WithheldListener = Callable[[list[ApprovalDecision]], Awaitable[None]]
"""Told, per listing that withheld any, all the tools withheld in it at once."""
_listener: ContextVar[ApprovalListener | None] = ContextVar("verity_approvals", default=None)


@contextmanager
def reporting_approvals(listener: ApprovalListener) -> Iterator[None]:
    """Within this block (and the tasks it starts), decisions also go to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class ApprovalStore:
    """ "Always" answers, kept in a JSON file as tool name → definition hash.

    The file is rewritten atomically under a lock, re-read inside it (`verity.tools._atomic`):
    two processes answering "always" at once both keep their approval, and a process starting
    meanwhile reads the old file or the new one, never half of one.
    """

    def __init__(self, path: Path | None = None) -> None:
        """Load the approvals in `path` (None keeps them in memory only).

        Raises:
            ValueError: the file exists but is not a JSON object of strings.
        """
        self.path = path
        self._approved: dict[str, str] = {}
        if path is not None and path.exists():
            self._approved = _parse_store(path, path.read_bytes())

    def approved(self, spec: ToolSpec) -> bool:
        """True when this exact definition of the tool was approved."""
        return self._approved.get(spec.name) == definition_hash(spec)

    def remember(self, spec: ToolSpec) -> None:
        """Approve this definition of the tool from now on, merged into the file's current
        approvals (those other processes stored since this one loaded it are kept, and seen).

        Raises:
            ValueError: the file became something other than an approval store (it is left
                as it is; the approval holds in memory).
            OSError: the file cannot be written, or its lock stayed taken (`TimeoutError`).
        """
        digest = definition_hash(spec)
        self._approved[spec.name] = digest
        if self.path is None:
            return
        path = self.path

        def merge(current: bytes | None) -> bytes:
            stored = {} if current is None else _parse_store(path, current)
            stored[spec.name] = digest
            self._approved = {**self._approved, **stored}
            return (json.dumps(stored, indent=2, sort_keys=True) + "\n").encode()

        rewrite(path, merge)


def _parse_store(path: Path, data: bytes) -> dict[str, str]:
    try:
        loaded = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise ValueError(f"{path} is not valid JSON ({why})") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise ValueError(f"{path} is not an approval store (a JSON object of hashes)")
    return loaded


class ApprovalGate:
    """Decides, asks and reports: the approval logic a toolset puts in front of its tools."""

    def __init__(
        self,
        policy: ApprovalPolicy | None = None,
        *,
        ask: Asker | None = None,
        allow: Sequence[str] = (),
        store: ApprovalStore | None = None,
        on_decision: ApprovalListener | None = None,
        on_withheld: WithheldListener | None = None,
    ) -> None:
        """Set up the gate; the defaults withhold every tool that is not read-only.

        Args:
            policy: Rules and defaults; the default allows read-only tools and asks for the rest.
            ask: Asks a person; None means nobody can answer, so such tools are withheld.
            allow: `server__tool` glob patterns allowed without asking (`--allow`, `alwaysAllow`),
                after the policy's own rules; matched without regard to case.
            store: Where "always" answers are kept; an in-memory store by default.
            on_decision: Also told every decision.
            on_withheld: Told the tools each listing withheld, together (e.g. to say so on
                stderr in one line).
        """
        self.policy = policy or ApprovalPolicy()
        self._ask = ask
        self._allow = tuple(allow)
        self._store = store or ApprovalStore()
        self._on_decision = on_decision
        self._on_withheld = on_withheld

    def decide(self, spec: ToolSpec) -> tuple[Decision, By, str]:
        """What happens to a call of this tool before anyone is asked, what decided it, and why."""
        decision, by, reason = self.policy.explain(spec)
        if self.policy.rule_for(spec) is not None:
            return decision, by, reason
        for pattern in self._allow:
            if fnmatch.fnmatchcase(spec.name.casefold(), pattern.casefold()):
                return "allow", "allow", f"allowed by pattern {pattern!r}"
        if decision == "ask" and self._store.approved(spec):
            return "allow", "user", "approved 'always' earlier"
        if decision == "ask" and self._ask is None:
            return "deny", "policy", f"needs approval ({reason}) and nobody can be asked"
        return decision, by, reason

    async def screen(self, specs: list[ToolSpec]) -> list[ToolSpec]:
        """The tools that may be offered; the others are reported as withheld."""
        offered, withheld = [], []
        for spec in specs:
            decision, by, reason = self.decide(spec)
            if decision == "deny":
                withheld.append(ApprovalDecision(spec.name, "withheld", by, reason))
                await self._report(withheld[-1])
            else:
                offered.append(spec)
        if withheld and self._on_withheld is not None:
            await self._on_withheld(withheld)
        return offered

    async def check(self, spec: ToolSpec, arguments: dict[str, Any]) -> None:
        """Let one call through, asking the person if the policy says so.

        Raises:
            ToolError: the call was denied (by the policy or the person).
        """
        decision, by, reason = self.decide(spec)
        if decision == "ask":
            assert self._ask is not None
            answer = await self._ask(spec, arguments)
            by = "user"
            decision = "deny" if answer == "deny" else "allow"
            reason = {"once": "approved once", "always": "approved always"}.get(answer, "declined")
            if answer == "always":
                reason = self._remember(spec)
        outcome: Outcome = "allowed" if decision == "allow" else "denied"
        await self._report(ApprovalDecision(spec.name, outcome, by, reason, dict(arguments)))
        if decision == "allow":
            return
        if by == "user":
            raise ToolError(
                f"The user declined the call to {spec.name!r}. Do not retry it; answer without it."
            )
        raise ToolError(f"Calling {spec.name!r} is not allowed by the approval policy ({reason}).")

    def _remember(self, spec: ToolSpec) -> str:
        """Store an "always" answer; the reason to report (the call is allowed either way)."""
        try:
            self._store.remember(spec)
        except (OSError, ValueError) as exc:
            return f"approved always, for this session only: not stored ({exc})"
        return "approved always"

    async def _report(self, decision: ApprovalDecision) -> None:
        for listener in (self._on_decision, _listener.get()):
            if listener is not None:
                await listener(decision)


class ApprovalToolset:
    """Wraps a toolset: withheld tools are not offered, asked ones run only once approved."""

    def __init__(
        self,
        inner: Toolset,
        policy: ApprovalPolicy | None = None,
        *,
        ask: Asker | None = None,
        store: ApprovalStore | None = None,
        allow: Sequence[str] = (),
        on_decision: ApprovalListener | None = None,
    ) -> None:
        """Wrap `inner` (the arguments are `ApprovalGate`'s)."""
        self.inner = inner
        self.gate = ApprovalGate(policy, ask=ask, allow=allow, store=store, on_decision=on_decision)

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.inner.__aexit__(exc_type, exc, tb)

    async def list_tools(self) -> list[ToolSpec]:
        """The inner tools that could run: withheld ones are not offered to the model."""
        return await self.gate.screen(await self.inner.list_tools())

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run the call if the policy, an allow pattern, a stored approval or the person allows.

        Raises:
            KeyError: no offered tool has this name.
            ToolError: the call was denied.
        """
        specs = {spec.name: spec for spec in await self.inner.list_tools()}
        await self.gate.check(specs[name], arguments)
        return await self.inner.call_tool(name, arguments)
