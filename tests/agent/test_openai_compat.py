"""OpenAICompatModel against a real OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import jsonschema
import pytest

from agent import Message, ModelError, UserError
from agent.models.openai_compat import OpenAICompatModel
from tools.builtin.calculator import calculator

QUESTION = [
    Message(role="system", content="You are a careful assistant that uses tools."),
    Message(role="user", content="What is 1234 * 5678 + 17?"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server_url(embedded_path: Path) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_path),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"llama_cpp.server did not start: {stderr[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.slow
async def test_calls_from_a_real_server_come_back_validated(server_url: str) -> None:
    model = OpenAICompatModel(server_url, "local", temperature=0, max_tokens=256)
    with anyio.fail_after(120):
        response = await model.respond(QUESTION, [calculator.spec])
    await model.aclose()
    assert response.invalid_calls == []
    assert [c.name for c in response.tool_calls] == ["calculator"]
    jsonschema.validate(response.tool_calls[0].arguments, calculator.spec.parameters)
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


@pytest.mark.slow
async def test_a_tool_result_round_trip_ends_in_an_answer(server_url: str) -> None:
    model = OpenAICompatModel(server_url, "local", temperature=0, max_tokens=256)
    with anyio.fail_after(120):
        first = await model.respond(QUESTION, [calculator.spec])
        call = first.tool_calls[0]
        follow_up = [
            *QUESTION,
            Message(role="assistant", content=first.content, tool_calls=first.tool_calls),
            Message(role="tool", tool_call_id=call.id, name=call.name,
                    content="7006669\n\n(Tool result above. Answer the user's question with it "
                    "now, in plain text, unless you need another tool.)"),
        ]  # fmt: skip
        second = await model.respond(follow_up, [calculator.spec])
    await model.aclose()
    assert second.tool_calls == []
    assert "7006669" in second.content


async def test_retries_on_429_then_succeeds() -> None:
    ok = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    answers = iter([httpx.Response(429, text="slow down"), httpx.Response(200, json=ok)])
    transport = httpx.MockTransport(lambda request: next(answers))
    model = OpenAICompatModel(
        "http://127.0.0.1:9/v1", "m", http_client=httpx.AsyncClient(transport=transport)
    )
    with anyio.fail_after(10):
        response = await model.respond([Message(role="user", content="hello")], [])
    assert (response.content, response.usage.completion_tokens) == ("hi", 1)


async def test_reasoning_content_is_split_from_the_answer() -> None:
    body = {"choices": [{"message": {"content": "</think>\n\n42", "reasoning_content": "6*7"}}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    model = OpenAICompatModel(
        "http://x/v1", "m", http_client=httpx.AsyncClient(transport=transport)
    )
    response = await model.respond([Message(role="user", content="6*7?")], [])
    assert (response.reasoning, response.content) == ("6*7", "42")


async def test_an_unreachable_server_is_a_model_error_after_bounded_retries() -> None:
    model = OpenAICompatModel(f"http://127.0.0.1:{_free_port()}/v1", "m", max_retries=1)
    with anyio.fail_after(10), pytest.raises(ModelError, match=r"unreachable .* \(2 attempts\)"):
        await model.respond([Message(role="user", content="hi")], [])


async def test_a_schema_invalid_call_from_the_server_becomes_a_retry_item() -> None:
    wire_call = {"id": "c1", "type": "function",
                 "function": {"name": "calculator", "arguments": '{"expr": "1+1"}'}}  # fmt: skip
    body = {"choices": [{"message": {"content": None, "tool_calls": [wire_call]}}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    model = OpenAICompatModel(
        "http://x/v1", "m", http_client=httpx.AsyncClient(transport=transport)
    )
    response = await model.respond([Message(role="user", content="1+1")], [calculator.spec])
    assert response.tool_calls == []
    assert response.invalid_calls == [
        "Invalid arguments for 'calculator' at arguments: Additional properties are not allowed "
        "('expr' was unexpected); at arguments: 'expression' is a required property."
    ]


def test_a_base_url_without_scheme_is_a_user_error() -> None:
    with pytest.raises(UserError, match="is not an http"):
        OpenAICompatModel("localhost:8080", "m")
