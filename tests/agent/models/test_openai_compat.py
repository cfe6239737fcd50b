"""OpenAICompatModel against a real OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import jsonschema
import pytest

from verity import Message, ModelError, ModelResponse, ToolCall, Usage, UserError
from verity.models.openai_compat import OpenAICompatModel
from verity.tools.builtin.calculator import calculator

QUESTION = [
    Message(role="system", content="You are a careful assistant that uses tools."),
    Message(role="user", content="What is 1234 * 5678 + 17?"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
            Message(
                role="tool",
                tool_call_id=call.id,
                name=call.name,
                content="7006669\n\n(Tool result above. Answer the user's question with it "
                "now, in plain text, unless you need another tool.)",
            ),
        ]
        second = await model.respond(follow_up, [calculator.spec])
    await model.aclose()
    assert second.tool_calls == []
    assert "7006669" in second.content


@pytest.mark.slow
async def test_a_streamed_tool_call_equals_the_non_streamed_one(server_url: str) -> None:
    pieces: list[tuple[str, str]] = []
    plain = OpenAICompatModel(server_url, "local", temperature=0, max_tokens=256)
    streamed = OpenAICompatModel(
        server_url,
        "local",
        temperature=0,
        max_tokens=256,
        stream=True,
        on_delta=lambda kind, text: pieces.append((kind, text)),
    )
    with anyio.fail_after(240):
        expected = await plain.respond(QUESTION, [calculator.spec])
        response = await streamed.respond(QUESTION, [calculator.spec])
    await plain.aclose()
    await streamed.aclose()
    assert [c.name for c in response.tool_calls] == ["calculator"]
    jsonschema.validate(response.tool_calls[0].arguments, calculator.spec.parameters)
    # llama-cpp-python ignores stream_options.include_usage: a stream carries no token counts.
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (0, 0)
    assert response.model_copy(update={"usage": expected.usage}) == expected
    assert len(pieces) > 1
    assert ({kind for kind, _ in pieces}, "".join(t for _, t in pieces)) == (
        {"content"},
        expected.raw,
    )


@pytest.mark.slow
async def test_streamed_tool_call_deltas_from_a_real_server_are_assembled(server_url: str) -> None:
    # A named tool_choice is the case where llama-cpp-python streams `tool_calls` deltas (it
    # repeats the id and the whole name in every chunk, and splits the arguments).
    pieces: list[tuple[str, str]] = []
    model = OpenAICompatModel(
        server_url,
        "local",
        temperature=0,
        max_tokens=256,
        stream=True,
        on_delta=lambda kind, text: pieces.append((kind, text)),
    )
    with anyio.fail_after(120):
        response = await model.respond(QUESTION, [calculator.spec], tool_choice="calculator")
    await model.aclose()
    assert (response.invalid_calls, response.finish_reason, pieces) == ([], "tool_calls", [])
    [call] = response.tool_calls
    assert call.name == "calculator" and call.id.startswith("call__0_calculator_")
    jsonschema.validate(call.arguments, calculator.spec.parameters)


@pytest.mark.slow
async def test_a_streamed_plain_answer_arrives_in_pieces(server_url: str) -> None:
    pieces: list[tuple[str, str]] = []
    model = OpenAICompatModel(
        server_url,
        "local",
        temperature=0,
        max_tokens=32,
        stream=True,
        on_delta=lambda kind, text: pieces.append((kind, text)),
    )
    with anyio.fail_after(120):
        response = await model.respond([Message(role="user", content="Say hello.")], [])
    await model.aclose()
    assert response.tool_calls == [] and response.content
    assert "".join(text for _, text in pieces).strip() == response.content
    assert response.usage.duration_s >= response.usage.prefill_s > 0


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


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://x/v1", "http://x/v1/chat/completions"),
        ("http://x/v1/", "http://x/v1/chat/completions"),
        (
            "https://x/openai/deployments/d?api-version=2024-10-21",
            "https://x/openai/deployments/d/chat/completions?api-version=2024-10-21",
        ),
    ],
)
async def test_the_endpoint_keeps_the_base_urls_query_string(base_url: str, expected: str) -> None:
    ok = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=ok)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    model = OpenAICompatModel(base_url, "m", http_client=client)
    await model.respond([Message(role="user", content="hello")], [])
    assert seen == [expected]


async def test_an_unreachable_server_is_a_model_error_after_bounded_retries() -> None:
    model = OpenAICompatModel(f"http://127.0.0.1:{_free_port()}/v1", "m", max_retries=1)
    with anyio.fail_after(10), pytest.raises(ModelError, match=r"unreachable .* \(2 attempts\)"):
        await model.respond([Message(role="user", content="hi")], [])


async def test_a_schema_invalid_call_from_the_server_becomes_a_retry_item() -> None:
    wire_call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "calculator", "arguments": '{"expr": "1+1"}'},
    }
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


def _sse(*events: object) -> bytes:
    lines = (e if isinstance(e, str) else json.dumps(e) for e in events)
    return b"".join(f"data: {line}\n\n".encode() for line in lines)


def _chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _streaming_model(
    *answers: httpx.Response, on_delta: Callable[[str, str], None] | None = None
) -> tuple[OpenAICompatModel, list[httpx.Request]]:
    requests: list[httpx.Request] = []
    replies = iter(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return next(replies)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    model = OpenAICompatModel(
        "http://x/v1", "m", stream=True, on_delta=on_delta, http_client=client
    )
    return model, requests


def _event_stream(body: bytes | AsyncIterator[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


async def test_tool_call_deltas_split_over_chunks_are_assembled_by_index() -> None:
    def piece(index: int, **function: str) -> dict[str, object]:
        call: dict[str, object] = {"index": index, "function": function}
        if "name" in function:
            call |= {"id": f"c{index}", "type": "function"}
        return _chunk({"tool_calls": [call]})

    model, requests = _streaming_model(
        _event_stream(
            _sse(
                _chunk({"role": "assistant", "content": ""}),
                piece(0, name="calculator", arguments=""),
                piece(0, arguments='{"expre'),
                piece(1, name="calculator", arguments='{"expression"'),
                piece(0, arguments='ssion": "2*3"}'),
                piece(1, arguments=': "1+1"}'),
                _chunk({}, finish="tool_calls"),
                {
                    "model": "m",
                    "choices": [],
                    "usage": {"prompt_tokens": 40, "completion_tokens": 12},
                },
                "[DONE]",
            )
        )
    )
    response = await model.respond([Message(role="user", content="2*3, 1+1")], [calculator.spec])
    assert json.loads(requests[0].content)["stream_options"] == {"include_usage": True}
    assert response.model_copy(update={"usage": Usage()}) == ModelResponse(
        tool_calls=[
            ToolCall(id="c0", name="calculator", arguments={"expression": "2*3"}),
            ToolCall(id="c1", name="calculator", arguments={"expression": "1+1"}),
        ],
        finish_reason="tool_calls",
        model="m",
    )
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (40, 12)


async def test_streamed_reasoning_content_is_split_from_the_answer_and_reported_live() -> None:
    pieces: list[tuple[str, str]] = []
    model, _ = _streaming_model(
        _event_stream(
            _sse(
                _chunk({"reasoning_content": "6*7 "}),
                _chunk({"reasoning_content": "is 42"}),
                _chunk({"content": "42"}),
                _chunk({"content": "."}, finish="stop"),
                "[DONE]",
            )
        ),
        on_delta=lambda kind, text: pieces.append((kind, text)),
    )
    response = await model.respond([Message(role="user", content="6*7?")], [])
    assert (response.reasoning, response.content, response.usage.completion_tokens) == (
        "6*7 is 42",
        "42.",
        0,
    )
    assert pieces == [
        ("reasoning", "6*7 "),
        ("reasoning", "is 42"),
        ("content", "42"),
        ("content", "."),
    ]


async def test_a_stream_cut_off_midway_is_a_model_error_without_a_retry() -> None:
    async def cut_off() -> AsyncIterator[bytes]:
        yield _sse(_chunk({"content": "The answer"}))
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )

    model, requests = _streaming_model(_event_stream(cut_off()), _event_stream(b""))
    with pytest.raises(ModelError) as caught:
        await model.respond([Message(role="user", content="hi")], [])
    assert caught.value.message == (
        "http://x/v1/chat/completions broke off the stream mid-answer (RemoteProtocolError: "
        "peer closed connection without sending complete message body)."
    )
    assert (len(requests), caught.value.__cause__) == (1, None)


async def test_a_stream_that_ends_without_finishing_is_a_model_error() -> None:
    model, _ = _streaming_model(_event_stream(_sse(_chunk({"content": "The"}))))
    with pytest.raises(ModelError, match=r"ended the stream mid-answer, before a finish_reason"):
        await model.respond([Message(role="user", content="hi")], [])


async def test_an_error_event_mid_stream_is_a_model_error() -> None:
    error = {"error": {"message": "out of memory", "code": 500}}
    model, _ = _streaming_model(_event_stream(_sse(_chunk({"content": "The"}), error)))
    with pytest.raises(ModelError) as caught:
        await model.respond([Message(role="user", content="hi")], [])
    assert caught.value.message == (
        "http://x/v1/chat/completions sent an error mid-stream: "
        '{"message": "out of memory", "code": 500}'
    )


async def test_a_503_before_the_stream_starts_is_retried() -> None:
    model, requests = _streaming_model(
        httpx.Response(503, text="loading model"),
        _event_stream(_sse(_chunk({"content": "hi"}, finish="stop"), "[DONE]")),
    )
    with anyio.fail_after(10):
        response = await model.respond([Message(role="user", content="hello")], [])
    assert (response.content, len(requests)) == ("hi", 2)


def test_on_delta_without_stream_is_a_user_error() -> None:
    with pytest.raises(UserError, match="on_delta needs stream=True"):
        OpenAICompatModel("http://x/v1", "m", on_delta=lambda kind, text: None)


def test_a_base_url_without_scheme_is_a_user_error() -> None:
    with pytest.raises(UserError, match="is not an http"):
        OpenAICompatModel("localhost:8080", "m")
