"""`verity serve --http` sessions are bounded: abandoned ones never lock a new client out.

A 2025-11-25 client opens a session with `initialize`; one that never closes it (a crashed
client, a hostile script) leaves it open. Each test starts the real command on 127.0.0.1 with
low bounds and talks raw HTTP (httpx) or the MCP SDK's client to it; none loads a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from tests.fixtures.processes import assert_no_leftovers, free_port, stop
from tests.fixtures.serve import start_serve

ABANDONED = 500
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "abandoner", "version": "1"},
    },
}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@contextmanager
def serving(home: Path, *limits: str) -> Iterator[str]:
    """`verity serve --http` with these session limits (no model is ever asked): its URL."""
    port = free_port()
    no_model = ("--base-url", "http://127.0.0.1:9/v1", "--api-model", "none")
    process = start_serve(port, *no_model, *limits, home=home)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(process)


def open_session(http: httpx.Client, url: str) -> str:
    """Initialize a session and walk away from it (no DELETE, no further request)."""
    response = http.post(url, content=json.dumps(INITIALIZE), headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


def session_headers(session: str) -> dict[str, str]:
    return {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}


def ping(http: httpx.Client, url: str, session: str) -> int:
    return http.post(url, content=json.dumps(PING), headers=session_headers(session)).status_code


async def list_tools(url: str) -> list[str]:
    with anyio.fail_after(60):
        async with Client(url, mode="legacy") as client:
            return [tool.name for tool in (await client.list_tools()).tools]


async def test_thousands_of_abandoned_sessions_never_lock_a_new_client_out(tmp_path: Path) -> None:
    limits = ("--max-sessions", "20", "--sessions-per-client", "20")
    with serving(tmp_path, *limits) as url, httpx.Client(timeout=30) as http:
        sessions = [open_session(http, url) for _ in range(ABANDONED)]
        tools = await list_tools(url)
        kept = [ping(http, url, session) for session in sessions[-25:]]
    assert tools == ["run_agent", "list_runs", "get_run"]
    # the newest 19 are still open: the least recently used made room, the last for the client
    assert kept == [404] * 6 + [200] * 19


async def test_a_client_at_its_share_loses_its_least_recently_used_idle_session(
    tmp_path: Path,
) -> None:
    limits = ("--max-sessions", "10", "--sessions-per-client", "3")
    with serving(tmp_path, *limits) as url, httpx.Client(timeout=30) as http:
        first, second, third = (open_session(http, url) for _ in range(3))
        assert ping(http, url, first) == 200  # now the second is the least recently used
        fourth = open_session(http, url)
        codes = [ping(http, url, s) for s in (first, second, third, fourth)]
    assert codes == [200, 404, 200, 200]


async def test_a_client_whose_sessions_are_all_busy_is_refused_and_others_get_in(
    tmp_path: Path,
) -> None:
    limits = ("--max-sessions", "10", "--sessions-per-client", "2")
    from_elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # another client
    with serving(tmp_path, *limits) as url, httpx.Client(timeout=30) as http:
        sessions = [open_session(http, url) for _ in range(2)]
        async with httpx.AsyncClient(timeout=30) as busy, AsyncExitStack() as streams:
            for session in sessions:
                headers = {**session_headers(session), "Accept": "text/event-stream"}
                stream = await streams.enter_async_context(busy.stream("GET", url, headers=headers))
                assert stream.status_code == 200  # held open: the session is in use
            refused = await busy.post(url, content=json.dumps(INITIALIZE), headers=HEADERS)
            async with httpx.AsyncClient(timeout=30, transport=from_elsewhere) as other:
                admitted = await other.post(url, content=json.dumps(INITIALIZE), headers=HEADERS)
    assert refused.status_code == 503
    assert refused.json()["error"]["message"] == (
        "Too many open sessions: every session this server may keep for this client (at most 2) "
        "or in all has a request in flight. End one (DELETE) or retry later."
    )
    assert admitted.status_code == 200


async def test_a_session_idle_past_the_timeout_is_closed(tmp_path: Path) -> None:
    with serving(tmp_path, "--session-idle-timeout", "1") as url, httpx.Client(timeout=30) as http:
        session = open_session(http, url)
        answers = [ping(http, url, session)]
        for _ in range(10):  # each ping restarts the countdown: wait longer than it between
            await anyio.sleep(1.5)
            answers.append(ping(http, url, session))
            if answers[-1] != 200:
                break
    assert answers[0] == 200
    assert answers[-1] == 404
