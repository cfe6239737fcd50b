"""Approval policy (design D9): allow, ask or deny each `server__tool`, wrapping any toolset.

Rules are glob patterns matched in order (`time__*`, `*__delete_*`); the first match decides.
Unmatched tools follow the MCP annotations: `readOnlyHint: true` is allowed, anything else
(unannotated tools count as destructive, per the spec) is asked for, and denied when nobody
can answer. An approval given "always" is stored with a hash of the tool's definition, so a
tool whose description or schema changed afterwards must be approved again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from verity.tools.base import ToolError, ToolResult, ToolSpec
from verity.tools.toolset import Toolset

__all__ = [
    "Answer",
    "ApprovalPolicy",
    "ApprovalStore",
    "ApprovalToolset",
    "Asker",
    "Decision",
    "definition_hash",
]

Decision = Literal["allow", "ask", "deny"]
Answer = Literal["once", "always", "deny"]
Asker = Callable[[ToolSpec, dict[str, Any]], Awaitable[Answer]]
"""Asks a person whether one call may run: once, always (stored), or deny."""


def definition_hash(spec: ToolSpec) -> str:
    """A stable hash of what the model and the user were shown about a tool."""
    shown = {
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
        "read_only": spec.read_only,
    }
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
        for pattern, decision in self.rules:
            if fnmatch.fnmatchcase(spec.name, pattern):
                return decision
        return self.read_only if spec.read_only else self.other


class ApprovalStore:
    """ "Always" answers, kept in a JSON file as tool name → definition hash."""

    def __init__(self, path: Path | None = None) -> None:
        """Load the approvals in `path` (None keeps them in memory only).

        Raises:
            ValueError: the file exists but is not a JSON object of strings.
        """
        self.path = path
        self._approved: dict[str, str] = {}
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} is not valid JSON ({exc.msg})") from None
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise ValueError(f"{path} is not an approval store (a JSON object of hashes)")
            self._approved = data

    def approved(self, spec: ToolSpec) -> bool:
        """True when this exact definition of the tool was approved."""
        return self._approved.get(spec.name) == definition_hash(spec)

    def remember(self, spec: ToolSpec) -> None:
        """Approve this definition of the tool from now on."""
        self._approved[spec.name] = definition_hash(spec)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self._approved, indent=2, sort_keys=True) + "\n")


class ApprovalToolset:
    """Wraps a toolset: denied tools are not offered, asked ones run only once approved."""

    def __init__(
        self,
        inner: Toolset,
        policy: ApprovalPolicy | None = None,
        *,
        ask: Asker | None = None,
        store: ApprovalStore | None = None,
    ) -> None:
        """Wrap `inner`.

        Args:
            inner: The toolset whose calls need approval.
            policy: The rules; the default allows read-only tools and asks for the rest.
            ask: Asks a person; None means nobody can answer, so "ask" becomes "deny".
            store: Where "always" answers are kept; an in-memory store by default.
        """
        self.inner = inner
        self.policy = policy or ApprovalPolicy()
        self._ask = ask
        self._store = store or ApprovalStore()

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
        """The inner tools that could run: denied ones are not offered to the model."""
        return [spec for spec in await self.inner.list_tools() if self._effective(spec) != "deny"]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run the call if the policy, a stored approval or the person allows it.

        Raises:
            KeyError: no offered tool has this name.
            ToolError: the call was denied.
        """
        specs = {spec.name: spec for spec in await self.inner.list_tools()}
        spec = specs[name]
        decision = self._effective(spec)
        if decision == "deny":
            raise ToolError(f"Calling {name!r} is not allowed by the approval policy.")
        if decision == "ask" and not self._store.approved(spec):
            assert self._ask is not None
            answer = await self._ask(spec, arguments)
            if answer == "deny":
                raise ToolError(
                    f"The user declined the call to {name!r}. Do not retry it; answer without it."
                )
            if answer == "always":
                self._store.remember(spec)
        return await self.inner.call_tool(name, arguments)

    def _effective(self, spec: ToolSpec) -> Decision:
        decision = self.policy.decide(spec)
        if decision == "ask" and self._ask is None and not self._store.approved(spec):
            return "deny"
        return decision
