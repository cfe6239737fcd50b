"""Servers' requests to the client: elicitation answered by a callback, sampling by a model."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import (
    assert_no_leftovers,
    ensure_everything,
    open_toolset,
    server_env,
)
from verity import LlamaCppModel, model_sampling_handler
from verity.tools.mcp import (
    ElicitationAnswer,
    ElicitationHandler,
    ElicitationRequest,
    MCPToolset,
    SamplingHandler,
    SamplingRequest,
    StdioServer,
    answer_with_defaults,
)
from verity.tools.toolset import call_tool


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


def faulty(
    *,
    elicitation: ElicitationHandler | None = None,
    sampling: SamplingHandler | None = None,
    timeout: float = 60.0,
) -> MCPToolset:
    server = StdioServer(
        name="faulty",
        command=sys.executable,
        args=("-m", "tests.fixtures.faulty_server"),
        env=server_env(),
        cwd=str(PROJECT_ROOT),
        timeout=timeout,
    )
    return open_toolset([server], elicitation=elicitation, sampling=sampling, resource_tools=False)


async def test_elicitation_is_answered_by_the_callback() -> None:
    asked: list[ElicitationRequest] = []

    async def user(request: ElicitationRequest) -> ElicitationAnswer:
        asked.append(request)
        return ElicitationAnswer(action="accept", content={"ok": True})

    with anyio.fail_after(120):
        async with faulty(elicitation=user) as toolset:
            result = await call_tool(toolset, "faulty__confirm", {"action": "wipe"}, time_limit=10)
    assert result.content == "confirmed"
    (request,) = asked
    assert (request.server, request.message) == ("faulty", "Really wipe?")
    assert request.schema["properties"]["ok"]["type"] == "boolean"


async def test_without_a_callback_elicitation_is_declined_and_the_model_gets_an_error() -> None:
    with anyio.fail_after(120):
        async with faulty() as toolset:
            result = await call_tool(toolset, "faulty__confirm", {"action": "wipe"}, time_limit=10)
    assert result.is_error is True


async def test_the_defaults_policy_accepts_a_form_with_defaults_and_declines_one_without() -> None:
    with anyio.fail_after(120):
        async with faulty(elicitation=answer_with_defaults) as toolset:
            styled = await call_tool(toolset, "faulty__styled", {}, time_limit=10)
            confirm = await call_tool(toolset, "faulty__confirm", {"action": "x"}, time_limit=10)
    assert styled.content == "plain x1"
    assert confirm.is_error is True


async def test_sampling_requests_are_answered_by_the_sampling_handler() -> None:
    seen: list[SamplingRequest] = []

    async def model(request: SamplingRequest) -> str:
        seen.append(request)
        return "Tides follow the moon."

    with anyio.fail_after(120):
        async with faulty(sampling=model) as toolset:
            result = await call_tool(toolset, "faulty__draft", {"topic": "tides"}, time_limit=10)
    assert result.content == "model said: Tides follow the moon."
    assert seen == [
        SamplingRequest(
            server="faulty",
            messages=[("user", "Write one line about tides.")],
            system_prompt=None,
            max_tokens=30,
        )
    ]


async def test_sampling_is_off_by_default() -> None:
    with anyio.fail_after(120):
        async with faulty() as toolset:
            result = await call_tool(toolset, "faulty__draft", {"topic": "tides"}, time_limit=10)
    assert result.is_error is True


async def test_a_2025_era_server_pushes_an_elicitation_that_the_callback_answers() -> None:
    everything = ensure_everything()
    if everything is None:
        pytest.skip("npm is not installed: cannot install @modelcontextprotocol/server-everything")
    asked: list[ElicitationRequest] = []

    async def user(request: ElicitationRequest) -> ElicitationAnswer:
        asked.append(request)
        return ElicitationAnswer(action="decline")

    server = StdioServer(
        name="everything", command="node", args=(str(Path(everything)),), env=server_env()
    )
    with anyio.fail_after(120):
        async with open_toolset([server], elicitation=user, resource_tools=False) as toolset:
            result = await call_tool(
                toolset, "everything__trigger-elicitation-request", {}, time_limit=10
            )
    assert len(asked) == 1 and asked[0].server == "everything"
    assert "decline" in result.content.lower()


@pytest.mark.slow
async def test_embedded_model_answers_a_servers_sampling_request(
    greedy_model: LlamaCppModel,
) -> None:
    # the call waits for the model: a loaded machine can take longer than the default 60 s
    sampling = model_sampling_handler(greedy_model)
    with anyio.fail_after(600):
        async with faulty(sampling=sampling, timeout=300) as toolset:
            result = await call_tool(toolset, "faulty__draft", {"topic": "tides"}, time_limit=300)
    assert result.is_error is False, result.content
    assert result.content.startswith("model said: ") and len(result.content) > len("model said: ")
