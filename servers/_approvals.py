"""Approvals for a served run: asked of the MCP client's user through elicitation, else withheld.

Nothing is ever allowed for want of someone to ask: when the client cannot be asked (no
elicitation capability, or a 2026-07-28 request that has no channel back to the client), when
the user declines or does not answer in time, the call is denied and listed in the run's
result.
"""

# No `from __future__ import annotations`: pydantic reads the form's annotations at runtime.
import json
import logging
from typing import Any, Literal

import anyio
from mcp import MCPError
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from verity.tools.approval import Answer
from verity.tools.base import ToolSpec
from verity.tools.mcp import ElicitationAnswer, ElicitationRequest

__all__ = ["ApprovalForm", "ClientApprovals"]

_log = logging.getLogger("verity.serve")
_SHOWN = 2000
"""Characters of a call's arguments shown to the person asked."""

_CHOICES = {"allow once": "once", "always allow": "always", "deny": "deny"}


class ApprovalForm(BaseModel):
    """What the person is asked to fill in."""

    decision: Literal["allow once", "always allow", "deny"] = Field(
        description="'always allow' also approves later calls to this tool, until it changes"
    )


class ClientApprovals:
    """The approver callback of one run, and the forwarder of upstream servers' questions."""

    def __init__(self, ctx: Context, *, timeout: float) -> None:
        """Ask through the request `ctx`; an unanswered question is denied after `timeout` s."""
        self._ctx = ctx
        self._timeout = timeout
        self.withheld: list[str] = []
        """The calls that did not run for want of an approval, each with the reason."""

    def _why_not(self) -> str | None:
        """Why the client cannot be asked now; None when it can."""
        capabilities = self._ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return "the MCP client does not support elicitation, so nobody could be asked"
        if not self._ctx.session.can_send_request:
            return (
                "this request has no channel back to the client (MCP 2026-07-28), so nobody "
                "could be asked"
            )
        return None

    async def ask(self, spec: ToolSpec, arguments: dict[str, Any]) -> Answer:
        """Ask the client's user whether the call may run: once, always, or deny."""
        call = f"{spec.name}({_shown(arguments)})"
        reason = self._why_not()
        if reason is not None:
            self.withheld.append(f"{call}: {reason}")
            return "deny"
        message = (
            f"Verity's agent wants to call {call}.\n\n{spec.description}\n\n"
            "This tool may change something. Allow it?"
        )
        with anyio.move_on_after(self._timeout) as waited:
            try:
                result = await self._ctx.elicit(message, ApprovalForm)
            except (MCPError, ValueError) as exc:
                self.withheld.append(f"{call}: asking the client failed ({exc})")
                return "deny"
        if waited.cancelled_caught:
            self.withheld.append(f"{call}: no answer within {self._timeout:g} s")
            return "deny"
        if result.action != "accept":
            self.withheld.append(f"{call}: the user chose {result.action}")
            return "deny"
        answer: Answer = _CHOICES[result.data.decision]  # type: ignore[assignment]
        if answer == "deny":
            self.withheld.append(f"{call}: denied by the user")
        return answer

    async def forward(self, request: ElicitationRequest) -> ElicitationAnswer:
        """Pass an upstream server's question to the client's user; decline when impossible."""
        if self._why_not() is not None:
            return ElicitationAnswer(action="decline")
        with anyio.move_on_after(self._timeout):
            try:
                result = await self._ctx.session.elicit_form(
                    message=f"MCP server {request.server!r} asks: {request.message}",
                    requested_schema=request.schema,
                    related_request_id=self._ctx.request_id,
                )
            except MCPError as exc:
                _log.info("forwarding an elicitation from %r failed: %r", request.server, exc)
                return ElicitationAnswer(action="decline")
            return ElicitationAnswer(action=result.action, content=result.content)
        return ElicitationAnswer(action="cancel")


def _shown(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
