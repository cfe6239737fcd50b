"""Approvals for a served run: asked of the MCP client's user through elicitation, else withheld.

On 2025-11-25 the question is an elicitation request sent while the call is open; on 2026-07-28
(no channel back to the client) it rides the multi-round-trip flow of a detached run
(`verity.servers._detached`). Nothing is ever allowed for want of someone to ask: when the
client cannot be asked (no elicitation capability) the approval gate withholds such tools from
the agent; when the user declines or does not answer in time, the call is denied. Either way
the run's result lists it.
"""

# No `from __future__ import annotations`: pydantic reads the form's annotations at runtime.
import json
import logging
from typing import Any, Literal

import anyio
from mcp import MCPError
from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.types import ElicitResult
from pydantic import BaseModel, Field, ValidationError

from verity.servers._detached import DetachedRun
from verity.tools.approval import Answer, ApprovalDecision, Asker
from verity.tools.base import ToolSpec
from verity.tools.mcp import ElicitationAnswer, ElicitationRequest

__all__ = ["ApprovalForm", "ClientApprovals", "why_not_asked"]

_log = logging.getLogger("verity.serve")
_SHOWN = 2000
"""Characters of a call's arguments shown to the person asked."""

_CHOICES = {"allow once": "once", "always allow": "always", "deny": "deny"}


class ApprovalForm(BaseModel):
    """What the person is asked to fill in."""

    decision: Literal["allow once", "always allow", "deny"] = Field(
        description="'always allow' also approves later calls to this tool, until it changes"
    )


_FORM_SCHEMA = render_elicitation_schema(ApprovalForm)


class ClientApprovals:
    """The approver callback of one run, and the forwarder of upstream servers' questions."""

    def __init__(
        self, ctx: Context, *, timeout: float, detached: DetachedRun | None = None
    ) -> None:
        """Ask through the request `ctx`, or through `detached` (2026-07-28); an unanswered
        question is denied after `timeout` seconds."""
        self._ctx = ctx
        self._timeout = timeout
        self._detached = detached
        self.withheld: list[str] = []
        """The calls (and tools) that did not run for want of an approval, each with why."""
        self._noted: set[str] = set()

    @property
    def asker(self) -> Asker | None:
        """The approver for the approval gate; None when the client cannot be asked, so that
        the gate withholds the tools that need approval (and `note` reports them)."""
        return self.ask if self._why_not() is None else None

    async def note(self, decision: ApprovalDecision) -> None:
        """The gate's listener: a tool withheld from the agent is reported once."""
        if decision.outcome != "withheld" or decision.tool in self._noted:
            return
        self._noted.add(decision.tool)
        why = self._why_not()
        self.withheld.append(
            f"{decision.tool}: not offered: {decision.reason}" + (f" ({why})" if why else "")
        )

    def _why_not(self) -> str | None:
        """Why the client cannot be asked now; None when it can."""
        return why_not_asked(self._ctx) if self._detached is None else None

    async def _elicit(self, message: str, schema: dict[str, Any]) -> ElicitResult | None:
        """The client's answer; None when none came in time."""
        if self._detached is not None:
            return await self._detached.ask(message, schema)
        result: ElicitResult | None = None
        with anyio.move_on_after(self._timeout):
            result = await self._ctx.session.elicit_form(
                message=message, requested_schema=schema, related_request_id=self._ctx.request_id
            )
        return result

    async def ask(self, spec: ToolSpec, arguments: dict[str, Any]) -> Answer:
        """Ask the client's user whether the call may run: once, always, or deny."""
        call = f"{spec.name}({_shown(arguments)})"
        reason = self._why_not()
        if reason is not None:
            self.withheld.append(f"{call}: nobody could be asked ({reason})")
            return "deny"
        message = (
            f"Verity's agent wants to call {call}.\n\n{spec.description}\n\n"
            "This tool may change something. Allow it?"
        )
        try:
            result = await self._elicit(message, _FORM_SCHEMA)
        except MCPError as exc:
            self.withheld.append(f"{call}: asking the client failed ({exc})")
            return "deny"
        if result is None:
            self.withheld.append(f"{call}: no answer within {self._timeout:g} s")
            return "deny"
        if result.action != "accept":
            self.withheld.append(f"{call}: the user chose {result.action}")
            return "deny"
        try:
            form = ApprovalForm.model_validate(result.content)
        except ValidationError:
            self.withheld.append(f"{call}: the answer was not one of the choices")
            return "deny"
        answer: Answer = _CHOICES[form.decision]  # type: ignore[assignment]
        if answer == "deny":
            self.withheld.append(f"{call}: denied by the user")
        return answer

    async def forward(self, request: ElicitationRequest) -> ElicitationAnswer:
        """Pass an upstream server's question to the client's user; decline when impossible."""
        if self._why_not() is not None:
            return ElicitationAnswer(action="decline")
        message = f"MCP server {request.server!r} asks: {request.message}"
        try:
            result = await self._elicit(message, request.schema)
        except MCPError as exc:
            _log.info("forwarding an elicitation from %r failed: %r", request.server, exc)
            return ElicitationAnswer(action="decline")
        if result is None:
            return ElicitationAnswer(action="cancel")
        return ElicitationAnswer(action=result.action, content=result.content)


def why_not_asked(ctx: Context) -> str | None:
    """Why the client of request `ctx` cannot be asked while the request is open; None if it
    can."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return "the MCP client declares no elicitation"
    if not ctx.session.can_send_request:
        return "the request has no channel back to the client (MCP 2026-07-28)"
    return None


def _shown(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
