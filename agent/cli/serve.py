"""`verity serve`: Verity as an MCP server, over stdio (the default) or streamable HTTP."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from verity.cli._common import add_trace_option
from verity.cli._server_options import add_server_options, check_server_options
from verity.cli._signals import run_interruptibly
from verity.cli.mcp import add_mcp_options
from verity.cli.run import add_model_options, add_verify_options, build_agent
from verity.errors import UserError
from verity.servers._http import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSIONS_PER_CLIENT,
    check_exposure,
    read_token_file,
    serve_http,
)
from verity.servers._served_agent import ServedAgent
from verity.servers.verity import build_server

__all__ = ["add_commands", "serve_command"]

TOKEN_VARIABLE = "VERITY_SERVE_TOKEN"


def add_commands(commands: Any) -> None:
    """Add `serve` to the `verity` command's subparsers."""
    serve = commands.add_parser(
        "serve",
        help="serve Verity as an MCP server (stdio, or --http)",
        description="Serve Verity as an MCP server: run_agent, list_runs, get_run and the "
        "resource verity://runs/{run_id}. Over stdio by default (Claude Desktop, IDEs), or "
        "streamable HTTP with --http.",
    )
    http = serve.add_argument_group("HTTP")
    http.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    http.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    http.add_argument("--port", type=int, default=8765, help="port to bind (8765; 0 picks one)")
    http.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"file holding the bearer token clients must send (or ${TOKEN_VARIABLE}); required "
        "beyond loopback; without one, only your own user is served",
    )
    http.add_argument(
        "--token", help="the token itself: other users can read it in the process list; avoid"
    )
    http.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a Host name clients may use besides loopback (repeatable)",
    )
    http.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser Origin allowed to call the server (repeatable)",
    )
    http.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help=f"largest request body accepted ({DEFAULT_MAX_REQUEST_BYTES})",
    )
    http.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        metavar="N",
        help="open 2025-11-25 sessions kept; past it the least recently used idle one is "
        f"closed ({DEFAULT_MAX_SESSIONS})",
    )
    http.add_argument(
        "--sessions-per-client",
        type=int,
        default=DEFAULT_SESSIONS_PER_CLIENT,
        metavar="N",
        help="open sessions one client (its address and user) may keep "
        f"({DEFAULT_SESSIONS_PER_CLIENT})",
    )
    http.add_argument(
        "--session-idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=f"a session with no request for this long is closed ({DEFAULT_IDLE_TIMEOUT:g})",
    )
    runs = serve.add_argument_group("runs")
    runs.add_argument("--max-steps", type=int, help="a run's model calls unless the call says (8)")
    runs.add_argument("--system", metavar="PROMPT", help="system prompt replacing Verity's")
    runs.add_argument(
        "--max-queue",
        type=int,
        default=4,
        help="runs that may wait behind the running ones; more are refused as busy (4)",
    )
    runs.add_argument(
        "--max-concurrent",
        type=int,
        default=1,
        metavar="N",
        help="runs going at once against a --base-url server (1); the in-process model runs "
        "one at a time",
    )
    runs.add_argument(
        "--approval-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="time to answer an approval question before the call is denied (300)",
    )
    add_verify_options(serve)
    add_trace_option(serve)
    add_mcp_options(serve)
    add_server_options(serve)
    add_model_options(serve)
    serve.set_defaults(handler=serve_command)


def _check(args: argparse.Namespace) -> None:
    minimums = [
        ("--max-steps", args.max_steps, 1),
        ("--max-queue", args.max_queue, 0),
        ("--max-concurrent", args.max_concurrent, 1),
        ("--verify-rounds", args.verify_rounds, 1),
        ("--max-request-bytes", args.max_request_bytes, 1024),
        ("--max-sessions", args.max_sessions, 1),
        ("--sessions-per-client", args.sessions_per_client, 1),
    ]
    for option, value, least in minimums:
        if value < least:
            raise UserError(f"{option} must be at least {least}, not {value}.", field=option[2:])
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, not {args.port}.", field="port")
    if args.approval_timeout <= 0:
        raise UserError("--approval-timeout must be more than 0 seconds.", field="approval_timeout")
    if not 0 < args.session_idle_timeout < float("inf"):
        raise UserError(
            "--session-idle-timeout must be more than 0 seconds.", field="session_idle_timeout"
        )
    if args.http:
        args.token = _token(args)
        check_exposure(args.host, args.token)
    if args.max_concurrent > 1 and not args.base_url:
        print(
            "verity: the in-process model runs one task at a time: --max-concurrent applies to "
            "a --base-url server; serving one run at a time.",
            file=sys.stderr,
        )
        args.max_concurrent = 1


def _token(args: argparse.Namespace) -> str | None:
    """The bearer token: from --token-file, --token (warned about) or the environment."""
    if args.token_file is not None and args.token is not None:
        raise UserError("Give the token one way, --token-file or --token, not both.", field="token")
    if args.token_file is not None:
        return read_token_file(Path(args.token_file))
    if args.token is not None:
        warnings.warn(
            "--token is visible to every user of this machine (ps, /proc/PID/cmdline); put the "
            f"token in a file for --token-file, or in {TOKEN_VARIABLE}",
            UserWarning,
            stacklevel=1,
        )
        return str(args.token)
    return os.environ.get(TOKEN_VARIABLE) or None


def _show_native_log(verbose: bool) -> None:
    """llama.cpp's own log (28 lines per model load): on stderr with -v, else nowhere."""
    log = logging.getLogger("verity.llama_cpp")
    log.propagate = False  # the MCP server's root handler would print its warnings
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("llama.cpp: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def serve_command(args: argparse.Namespace) -> int:
    """`verity serve`: serve until the client goes away (stdio) or the process is interrupted."""
    _check(args)
    _show_native_log(args.verbose)
    check_server_options(args)
    # approvals are asked of each call's client; a run starts the MCP servers it may use
    agent = build_agent(args)
    served = ServedAgent(
        agent,
        max_queue=args.max_queue,
        max_concurrent=args.max_concurrent,
        approval_timeout=args.approval_timeout,
    )
    server = build_server(served)

    async def serve() -> None:
        try:
            if args.http:
                await serve_http(
                    server,
                    host=args.host,
                    port=args.port,
                    token=args.token,
                    allowed_hosts=args.allowed_host,
                    allowed_origins=args.allowed_origin,
                    max_request_bytes=args.max_request_bytes,
                    max_sessions=args.max_sessions,
                    sessions_per_client=args.sessions_per_client,
                    idle_timeout=args.session_idle_timeout,
                )
            else:
                if sys.stdin.isatty():
                    print(
                        "verity: serving MCP on stdin/stdout, for an MCP client to start "
                        "(--http serves HTTP); Ctrl-C stops.",
                        file=sys.stderr,
                    )
                await server.run_stdio_async()
        finally:
            await agent.aclose()

    try:
        run_interruptibly(serve)  # SIGINT/SIGTERM: cancel the runs, then close
    finally:
        # every run has ended and left native code by now: anyio.run waited for its threads
        agent.close()
    return 0
