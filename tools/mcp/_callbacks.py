"""Answers to what servers ask of the client: elicitation (form) and legacy sampling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mcp.client import ClientRequestContext
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    TextContent,
)

from verity.tools.mcp._types import (
    ElicitationAnswer,
    ElicitationHandler,
    ElicitationRequest,
    SamplingHandler,
    SamplingRequest,
)

__all__ = ["answer_with_defaults", "client_callbacks"]


def client_callbacks(
    server: str, elicitation: ElicitationHandler | None, sampling: SamplingHandler | None
) -> dict[str, Any]:
    """`mcp.Client` keyword arguments that route `server`'s requests to the handlers.

    Without an elicitation handler every request is declined (the server sees a refusal, not an
    error); without a sampling handler the capability is not announced at all.
    """
    kwargs: dict[str, Any] = {"elicitation_callback": _elicit(server, elicitation)}
    if sampling is not None:
        kwargs["sampling_callback"] = _sample(server, sampling)
    return kwargs


async def answer_with_defaults(request: ElicitationRequest) -> ElicitationAnswer:
    """An elicitation policy for when nobody can answer: accept the schema's defaults.

    The form is accepted only when every required field has a default; otherwise it is
    declined, so a server never gets a value nobody chose.
    """
    properties: dict[str, Any] = request.schema.get("properties", {})
    required = set(request.schema.get("required", []))
    content = {key: field["default"] for key, field in properties.items() if "default" in field}
    if not required <= content.keys():
        return ElicitationAnswer(action="decline")
    return ElicitationAnswer(action="accept", content=content)


def _elicit(server: str, handler: ElicitationHandler | None) -> Any:
    async def elicit(
        context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        # URL mode sends the user to a web page; a local agent has nobody to open it.
        if handler is None or not isinstance(params, ElicitRequestFormParams):
            return ElicitResult(action="decline")
        schema = dict(params.requested_schema)
        answer = await handler(ElicitationRequest(server, params.message, schema))
        return ElicitResult(action=answer.action, content=answer.content)

    return elicit


def _sample(server: str, handler: SamplingHandler) -> Any:
    async def sample(
        context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult | ErrorData:
        messages: list[tuple[str, str]] = [
            (str(m.role), " ".join(_texts(m.content_as_list))) for m in params.messages
        ]
        request = SamplingRequest(server, messages, params.system_prompt, params.max_tokens)
        text = await handler(request)
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text=text),
            model="verity",
            stop_reason="endTurn",
        )

    return sample


def _texts(blocks: Iterable[object]) -> list[str]:
    return [b.text for b in blocks if isinstance(b, TextContent)]
