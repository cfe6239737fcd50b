"""`verity serve --http` as an attacker meets it: token, Host and Origin checks, size limits.

Each test starts the real command on 127.0.0.1 and sends raw HTTP; none loads the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import assert_no_leftovers, free_port, stop, wait_for_port
from tests.fixtures.serve import serve_env, start_serve
from verity.verify import VERIFY_SPECS

TOKEN = "s3cret-token-for-the-tests-0123456789"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One server with a token and a 4 KiB request limit: its URL and its home directory."""
    home = tmp_path_factory.mktemp("serve")
    port = free_port()
    process = start_serve(port, "--max-request-bytes", "4096", home=home, VERITY_SERVE_TOKEN=TOKEN)
    try:
        yield f"http://127.0.0.1:{port}/mcp", home
    finally:
        stop(process)


def post(url: str, *, body: object = INITIALIZE, **headers: str) -> httpx.Response:
    return httpx.post(url, content=json.dumps(body), headers={**MCP_HEADERS, **headers}, timeout=30)


def test_requests_without_the_right_bearer_token_are_refused(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    missing = post(url)
    wrong = post(url, Authorization="Bearer not-the-token")
    no_scheme = post(url, Authorization=TOKEN)
    basic = post(url, Authorization=f"Basic {TOKEN}")
    prefix = post(url, Authorization=f"Bearer {TOKEN[:-1]}")
    right = post(url, Authorization=f"bearer {TOKEN}")
    for refused in (missing, wrong, no_scheme, basic, prefix):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="verity"'
        assert TOKEN not in refused.text
    assert right.status_code == 200


def test_dns_rebinding_is_refused_even_with_the_token(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    auth = f"Bearer {TOKEN}"
    rebound = post(url, Authorization=auth, Host="evil.example")
    rebound_with_port = post(url, Authorization=auth, Host="evil.example:80")
    foreign_page = post(url, Authorization=auth, Origin="http://evil.example")
    local_page = post(url, Authorization=auth, Origin="http://localhost:3000")
    assert (rebound.status_code, rebound_with_port.status_code) == (421, 421)
    assert foreign_page.status_code == 403
    assert local_page.status_code == 200


def test_request_bodies_over_the_limit_are_refused(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    big = {**INITIALIZE, "params": {**INITIALIZE["params"], "padding": "x" * 5000}}  # type: ignore[dict-item]
    refused = post(url, body=big, Authorization=f"Bearer {TOKEN}")
    assert refused.status_code == 413


async def test_an_mcp_client_with_the_token_lists_the_tools_and_the_token_is_never_logged(
    guarded: tuple[str, Path],
) -> None:
    url, home = guarded
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for mode in ("legacy", "2026-07-28"):
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            with anyio.fail_after(60):
                async with Client(
                    streamable_http_client(url, http_client=http), mode=mode
                ) as client:
                    tools = [t.name for t in (await client.list_tools()).tools]
                    runs = await client.call_tool("list_runs", {})
        assert tools == ["run_agent", "list_runs", "get_run"]
        assert runs.is_error is False
    written = [p for p in home.rglob("*") if p.is_file()]
    assert written, "the server wrote nothing at all"
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), f"the token leaked into {path}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--host", "0.0.0.0"],
            "verity: error: --host 0.0.0.0 makes the server reachable from other machines: set a "
            "bearer token in VERITY_SERVE_TOKEN (or --token-file), e.g. from: python -c 'import "
            "secrets; print(secrets.token_urlsafe(32))'",
        ),
        (
            ["--token", "short"],
            "verity: error: The bearer token is too short (5 characters); use at least 16, e.g. "
            "from: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        ),
        (["--max-queue", "-1"], "verity: error: --max-queue must be at least 0, not -1."),
        (
            ["--verify", "twice"],
            f"verity: error: Unknown --verify 'twice'. Use one of: {VERIFY_SPECS} (e.g. "
            "'all:self,consensus:3').",
        ),
    ],
)
def test_serve_refuses_unsafe_or_bad_options_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verity",
            "serve",
            "--http",
            "--trace-db",
            str(tmp_path / "t.db"),
            *args,
        ],
        cwd=PROJECT_ROOT,
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in done.stderr


def test_the_toolbox_prints_help(tmp_path: Path) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "verity.servers.toolbox", "--help"],
        cwd=PROJECT_ROOT,
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: python -m verity.servers.toolbox")
    assert "--http" in helped.stdout


@pytest.fixture
def toolbox_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "verity.servers.toolbox", "--http", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=serve_env(tmp_path),
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process, timeout=60)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(process)


async def test_the_toolbox_serves_http_with_dns_rebinding_refused(toolbox_url: str) -> None:
    with anyio.fail_after(60):
        async with Client(toolbox_url) as client:
            result = await client.call_tool("calculator", {"expression": "6 * 7"})
    async with httpx.AsyncClient() as http:
        rebound = await http.post(
            toolbox_url,
            content=json.dumps(INITIALIZE),
            timeout=30,
            headers={**MCP_HEADERS, "Host": "evil.example"},
        )
    assert result.structured_content == {"result": "42"}
    assert rebound.status_code == 421
