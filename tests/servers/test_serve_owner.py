"""Who may call `verity serve --http`: on loopback without a token, only the user who started it.

The trace database is private (0600); the server must not hand its contents to another local
user through `list_runs`. The second OS user is real: the tests create one and run an MCP client
as that user (they skip when not run as root). Tokens come from a file or the environment; one
on the command line still works but is warned about, and blank ones are refused at start.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import PROJECT_ROOT
from tests.fixtures.processes import (
    assert_no_leftovers,
    free_port,
    server_env,
    stop,
    wait_for_port,
)
from tests.fixtures.serve import serve_env, start_serve

OTHER_USER = "verity-probe"
TOKEN = "a-token-for-the-owner-tests-0123456789"
SECRET_TASK = "the owner's quick secret plan"
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
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
PROBE = """
import json, sys, anyio, httpx, httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

url, token = sys.argv[1], sys.argv[2]
auth = {"Authorization": "Bearer " + token} if token else {}
headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
opened = httpx.post(url, content=sys.argv[3], headers={**headers, **auth}, timeout=30)
tasks = []
if opened.status_code == 200:
    async def main() -> None:
        async with httpx2.AsyncClient(headers=auth, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http), mode="legacy") as c:
                runs = await c.call_tool("list_runs", {})
                tasks.extend(run["task"] for run in runs.structured_content["runs"])
    anyio.run(main)
print(json.dumps({"status": opened.status_code, "body": opened.text, "tasks": tasks}))
"""


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    assert_no_leftovers()


@pytest.fixture(scope="module")
def model_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A model server that answers a "quick" task at once."""
    port, log = free_port(), tmp_path_factory.mktemp("model") / "model.log"
    model = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.slow_model", str(port), "0", str(log)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **server_env()},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, model)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(model)


@contextmanager
def serving(home: Path, model_url: str, *args: str) -> Iterator[str]:
    """`verity serve --http` whose trace holds one run of the owner's: its URL."""
    port = free_port()
    model = ("--base-url", model_url, "--api-model", "slow")
    process = start_serve(port, *model, *args, home=home)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        yield url
    finally:
        stop(process)


async def owner_runs_a_task(url: str, token: str | None = None) -> list[str]:
    """The owner runs a task and lists the runs: the tasks listed."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with anyio.fail_after(60):
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode="legacy") as client:
                await client.call_tool("run_agent", {"task": SECRET_TASK})
                runs = await client.call_tool("list_runs", {})
    assert runs.structured_content is not None
    return [run["task"] for run in runs.structured_content["runs"]]


def other_user() -> tuple[int, int]:
    """A second OS user (created once); skips the test unless run as root with useradd."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs root, useradd and setpriv to act as a second local user")
    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, OTHER_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(OTHER_USER)
    return entry.pw_uid, entry.pw_gid


def probe_as_other_user(url: str, token: str = "") -> dict[str, object]:
    """As the other user: open a session (raw HTTP), and if let in, list the runs (MCP SDK)."""
    uid, gid = other_user()
    become = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
    done = subprocess.run(
        [*become, sys.executable, "-c", PROBE, url, token, json.dumps(INITIALIZE)],
        cwd="/",
        env={"PATH": os.environ["PATH"], "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def initialize(url: str, token: str | None = None) -> int:
    """The HTTP status of an `initialize` sent with this token (or none)."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(url, content=json.dumps(INITIALIZE), headers={**HEADERS, **auth})
    return response.status_code


async def test_another_local_user_cannot_read_the_owners_runs_without_a_token(
    tmp_path: Path, model_url: str
) -> None:
    with serving(tmp_path, model_url) as url:
        owner_sees = await owner_runs_a_task(url)
        other = probe_as_other_user(url)
    assert owner_sees == [SECRET_TASK]
    assert other == {
        "status": 403,
        "body": "Forbidden: this Verity server serves only the user who started it. To share "
        "it, start it with a token (--token-file or VERITY_SERVE_TOKEN) and send it as "
        "'Authorization: Bearer <token>'.\n",
        "tasks": [],
    }


async def test_a_user_given_the_token_is_served(tmp_path: Path, model_url: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with serving(tmp_path, model_url, "--token-file", str(token_file)) as url:
        owner_sees = await owner_runs_a_task(url, TOKEN)
        other = probe_as_other_user(url, TOKEN)
        without = initialize(url)
    assert owner_sees == [SECRET_TASK]
    assert (other["status"], other["tasks"]) == (200, [SECRET_TASK])
    assert without == 401


def test_a_token_from_a_file_stays_out_of_the_process_list(tmp_path: Path, model_url: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with serving(tmp_path, model_url, "--token-file", str(token_file)) as url:
        port = url.split(":")[2].split("/")[0]
        [command_line] = [
            " ".join(process.info["cmdline"] or [])
            for process in psutil.process_iter(["cmdline"])
            if port in (process.info["cmdline"] or [])
        ]
        right = initialize(url, TOKEN)
    assert right == 200
    assert TOKEN not in command_line
    assert "warning" not in (tmp_path / "serve.log").read_text()


ON_THE_COMMAND_LINE = (
    "verity: warning: --token is visible to every user of this machine (ps, /proc/PID/cmdline); "
    "put the token in a file for --token-file, or in VERITY_SERVE_TOKEN"
)
IN_A_SHARED_FILE = (
    "verity: warning: the token file {path} can be read by other users; make it private: "
    "chmod 600 {path}"
)


@pytest.mark.parametrize(
    ("mode", "warning"),
    [("argument", ON_THE_COMMAND_LINE), ("shared file", IN_A_SHARED_FILE)],
)
def test_a_token_others_can_read_works_with_a_warning(
    tmp_path: Path, model_url: str, mode: str, warning: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    given = ["--token", TOKEN] if mode == "argument" else ["--token-file", str(token_file)]
    with serving(tmp_path, model_url, *given) as url:
        right = initialize(url, TOKEN)
    assert right == 200
    lines = (tmp_path / "serve.log").read_text().splitlines()
    assert warning.format(path=token_file) in lines


MAKE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
BLANK = f"verity: error: The bearer token is blank; use a random one, e.g. from: {MAKE}"
UNSENDABLE = (
    "verity: error: The bearer token has spaces or characters other than printable ASCII, which "
    f"a client cannot send in an Authorization header; use e.g. one from: {MAKE}"
)
MISSING = "verity: error: Cannot read the token file {file}: No such file or directory."
TWICE = "verity: error: Give the token one way, --token-file or --token, not both."


@pytest.mark.parametrize(
    ("args", "variable", "file_text", "message"),
    [
        ([], " " * 16, None, BLANK),
        (["--token-file", "{file}"], None, "\n  \n", BLANK),
        ([], "an inner space is not sendable", None, UNSENDABLE),
        (["--token-file", "{file}"], None, None, MISSING),
        (["--token-file", "{file}", "--token", TOKEN], None, TOKEN, TWICE),
    ],
    ids=["blank-variable", "blank-file", "inner-space", "missing-file", "both"],
)
def test_serve_refuses_a_token_it_could_never_accept(
    tmp_path: Path, args: list[str], variable: str | None, file_text: str | None, message: str
) -> None:
    token_file = tmp_path / "token"
    if file_text is not None:
        token_file.write_text(file_text)
        token_file.chmod(0o600)
    extra = {"VERITY_SERVE_TOKEN": variable} if variable is not None else {}
    options = ["--trace-db", str(tmp_path / "t.db"), *(arg.format(file=token_file) for arg in args)]
    done = subprocess.run(
        [sys.executable, "-m", "verity", "serve", "--http", *options],
        cwd=PROJECT_ROOT,
        env=serve_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == message.format(file=token_file)
    assert "Traceback" not in done.stderr
