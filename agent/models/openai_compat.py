"""OpenAI-compatible chat backends: llama-server, vLLM, SGLang, Ollama (`/v1`), the DeepSeek API.

Every returned call is validated against its tool's JSON Schema (a server cannot always
constrain decoding); an invalid one comes back in `invalid_calls` for a retry message. Calls a
server left in the text (small models write fenced JSON that servers' parsers do not accept)
are recovered with the model family's lenient parser and validated the same way.

With `stream=True` the answer is read as server-sent events and its deltas are assembled into
the same message shape a non-streamed answer has, so both go through one post-processing path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from httpx._client import UseClientDefault  # the type of httpx.USE_CLIENT_DEFAULT

from verity.errors import ModelError, UserError
from verity.messages import Message, ModelResponse, ToolCall, Usage
from verity.models._sse import DeltaKind, StreamedMessage
from verity.models.base import ToolChoice, function_tool
from verity.models.formats import HermesFormat, ToolCallFormat
from verity.models.formats.base import validate_call
from verity.tools.base import ToolSpec

__all__ = ["DeltaKind", "OpenAICompatModel"]

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"

"""What a streamed piece of text is: answer text, or reasoning the server reported apart."""


class OpenAICompatModel:
    """A model behind `POST {base_url}/chat/completions`.

    Args:
        base_url: The API root, e.g. `http://127.0.0.1:8080/v1`.
        model: The served model's name.
        stream: Read the answer as server-sent events. The response is the same as without
            streaming; token counts are those the server reports in its last event (none
            if it sends none), `usage.prefill_s` is the time to the first delta, and
            `timeout` bounds each wait for data, not the whole answer.
        on_delta: Called with each piece of text as it arrives, as the server sends it (a
            `<think>` block inside the content arrives as "content"). Only with `stream`.

    Raises:
        UserError: `base_url` is not an http(s) URL, or `on_delta` is given without `stream`.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.6,
        top_p: float = 0.95,
        max_tokens: int = 1024,
        seed: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
        call_format: ToolCallFormat | None = None,
        stream: bool = False,
        on_delta: Callable[[DeltaKind, str], None] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UserError(
                f"base_url {base_url!r} is not an http(s) URL, e.g. http://127.0.0.1:8080/v1.",
                field="base_url",
            )
        if on_delta is not None and not stream:
            raise UserError("on_delta needs stream=True.", field="on_delta")
        base_url, self._auth = _without_credentials(base_url)
        self.base_url = base_url.rstrip("/")
        """The API root, without any user name or password it was given with."""
        self.model = model
        self.sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        if seed is not None:
            self.sampling["seed"] = seed
        self.max_retries = max_retries
        self.stream = stream
        self._on_delta = on_delta
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = http_client or httpx.AsyncClient(headers=headers, timeout=timeout)
        self._call_format = call_format or HermesFormat()

    @property
    def name(self) -> str:
        """The served model's name."""
        return self.model

    def describe(self) -> dict[str, Any]:
        """What the trace records about this model: server, served model, sampling."""
        return {
            "backend": "openai-compatible",
            "name": self.model,
            "base_url": self.base_url,
            "stream": self.stream,
            "sampling": dict(self.sampling),
        }

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def respond(
        self, messages: list[Message], tools: list[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        """One chat completion, with the calls validated.

        Raises:
            ModelError: the server is unreachable, keeps failing, answers with an error, or
                breaks off a streamed answer.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire_message(m) for m in messages],
            **self.sampling,
        }
        if tools:
            body["tools"] = [function_tool(t) for t in tools]
            body["tool_choice"] = _wire_tool_choice(tool_choice)
        if self.stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        payload, first_s = await self._request(body)
        duration = time.perf_counter() - started
        return self._response(payload, tools, duration=duration, prefill_s=first_s or 0.0)

    def _response(
        self, payload: dict[str, Any], tools: list[ToolSpec], *, duration: float, prefill_s: float
    ) -> ModelResponse:
        try:
            message = payload["choices"][0]["message"]
            finish = payload["choices"][0].get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError):
            raise ModelError(
                f"{self.base_url} answered without choices: {payload!r:.300}"
            ) from None
        reasoning, content = _split_reasoning(message)
        calls, invalid = self._calls(message, content, tools)
        if calls or invalid:
            content = (
                self._call_format.parse(content, tools, first_id=0).content if tools else content
            )
        usage = payload.get("usage") or {}
        return ModelResponse(
            content=content,
            reasoning=reasoning,
            tool_calls=calls,
            invalid_calls=invalid,
            raw=message.get("content") or "",
            finish_reason="tool_calls" if calls else ("length" if finish == "length" else "stop"),
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0),
                prompt_tokens_evaluated=usage.get("prompt_tokens", 0)
                - (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
                duration_s=duration,
                prefill_s=prefill_s,
                decode_s=duration - prefill_s,
                tokens_known="prompt_tokens" in usage or "completion_tokens" in usage,
            ),
            model=payload.get("model") or self.model,
        )

    def _calls(
        self, message: dict[str, Any], content: str, tools: list[ToolSpec]
    ) -> tuple[list[ToolCall], list[str]]:
        if not tools:
            return [], []
        calls: list[ToolCall] = []
        invalid: list[str] = []
        for index, wire in enumerate(message.get("tool_calls") or []):
            function = wire.get("function") or {}
            arguments = function.get("arguments") or "{}"
            payload = {"name": function.get("name"), "arguments": arguments}
            call, problem = validate_call(payload, tools, wire.get("id") or f"call_{index}")
            if call is not None:
                calls.append(call)
            elif problem is not None:
                invalid.append(problem)
        if not calls and not invalid:
            parsed = self._call_format.parse(content, tools, first_id=0)
            calls, invalid = parsed.calls, parsed.invalid
        return calls, invalid

    async def _request(self, body: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        """The completion as a non-streamed payload, and the seconds to its first streamed delta."""
        url = _endpoint(self.base_url, "chat/completions")
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                await anyio.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
            try:
                if self.stream:
                    return await self._read_stream(url, body)
                return await self._post(url, body), None
            except _RetryableError as retry:
                problem = retry.problem
        raise ModelError(f"{url} {problem} ({self.max_retries + 1} attempts).")

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._client.post(url, json=body, auth=self._auth)
        except httpx.TransportError as exc:
            raise _RetryableError(self._transport_problem(exc)) from None
        _check_status(url, response)
        try:
            result: dict[str, Any] = response.json()
        except json.JSONDecodeError:
            raise ModelError(f"{url} answered with non-JSON: {response.text[:300]!r}") from None
        return result

    async def _read_stream(
        self, url: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], float | None]:
        started = time.perf_counter()
        stream = StreamedMessage()
        try:
            async with self._client.stream("POST", url, json=body, auth=self._auth) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _check_status(url, response)
                async for line in response.aiter_lines():
                    if stream.add_line(url, line, self._on_delta) and stream.first_s is None:
                        stream.first_s = time.perf_counter() - started
                    if stream.done:
                        break
        except httpx.TransportError as exc:
            # Once events arrived a retry would repeat what on_delta already passed on.
            if not stream.events:
                raise _RetryableError(self._transport_problem(exc)) from None
            if isinstance(exc, httpx.TimeoutException):
                what = f"no data for {self._client.timeout.read} s"
            else:
                what = f"{type(exc).__name__}: {exc}"
            raise ModelError(f"{url} broke off the stream mid-answer ({what}).") from None
        if not stream.done and stream.finish_reason is None:
            raise ModelError(
                f"{url} ended the stream mid-answer, before a finish_reason or [DONE]."
            )
        return stream.payload(), stream.first_s

    def _transport_problem(self, exc: httpx.TransportError) -> str:
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out after {self._client.timeout.read} s"
        return f"unreachable ({type(exc).__name__}: {exc})"


class _RetryableError(Exception):
    """An attempt failed before anything was received, so another one is safe."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _without_credentials(url: str) -> tuple[str, httpx.Auth | UseClientDefault]:
    """The URL without its user info, and that user info as Basic auth (as httpx would send it).

    The URL is printed in errors and stored with failed runs: a password in it must not be.

    Raises:
        UserError: the URL cannot be parsed.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UserError(f"base_url is not a valid URL ({exc}).", field="base_url") from None
    if not parsed.userinfo:
        return url, httpx.USE_CLIENT_DEFAULT
    auth = httpx.BasicAuth(parsed.username, parsed.password)
    return str(parsed.copy_with(username=None, password=None)), auth


def _endpoint(base_url: str, name: str) -> str:
    """`name` appended to the base URL's path, its query string kept (e.g. `?api-version=`)."""
    parsed = httpx.URL(base_url)
    return str(parsed.copy_with(path=f"{parsed.path.rstrip('/')}/{name}"))


def _check_status(url: str, response: httpx.Response) -> None:
    if response.status_code in _RETRY_STATUS:
        raise _RetryableError(f"answered HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        raise ModelError(f"{url} answered HTTP {response.status_code}: {response.text[:500]}")


def _split_reasoning(message: dict[str, Any]) -> tuple[str | None, str]:
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    content = message.get("content") or ""
    if _THINK_CLOSE in content:
        thought, _, content = content.partition(_THINK_CLOSE)
        reasoning = (reasoning or "") + thought.replace(_THINK_OPEN, "", 1).strip()
    return reasoning or None, content.strip()


def _wire_message(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    if message.role == "tool":
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _wire_tool_choice(choice: ToolChoice) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}
