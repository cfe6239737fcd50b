"""`verity chat`: a conversation on one loaded model, its KV cache warm between turns."""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from verity.cli._common import EXIT_REJECTED, EXIT_RUN_ERROR, add_trace_option
from verity.cli._server_options import add_server_options
from verity.cli._signals import run_interruptibly
from verity.cli.mcp import add_mcp_options
from verity.cli.run import (
    add_continue_options,
    add_model_options,
    add_verify_options,
    build_agent,
    continued_conversation,
)
from verity.errors import ModelError, RunError
from verity.terminal import printable
from verity.trace.conversation import CONTINUES_LABEL, CONVERSATION_LABEL

__all__ = ["add_commands"]
COMMANDS = "/new starts a new conversation, /exit (or Ctrl-D) leaves"


def add_commands(commands: Any) -> None:
    """Add `chat` to the `verity` command's subparsers."""

    chat = commands.add_parser("chat", help="a conversation: a turn per line, the model kept warm")
    chat.add_argument("--system", metavar="PROMPT", help="system prompt replacing Verity's")
    chat.add_argument("--max-steps", type=int, help="model calls allowed per turn (8)")
    add_continue_options(chat)
    chat.add_argument("--quiet", action="store_true", help="answers only; no prompt or progress")
    chat.set_defaults(json=False, show_reasoning=None, require_verified=False, no_log=False)
    add_verify_options(chat)
    add_trace_option(chat)
    add_mcp_options(chat)
    add_server_options(chat)
    add_model_options(chat)
    chat.set_defaults(handler=chat_command)


def chat_command(args: argparse.Namespace) -> int:
    """`verity chat`: read a turn per line from stdin until EOF or /exit; print each answer."""

    agent = build_agent(args)
    interactive = sys.stdin.isatty() and not args.quiet

    async def converse() -> int:
        code = 0  # 4 when a turn ended without an answer, 7 when one was refused
        async with agent:
            history, labels = continued_conversation(agent, args.continue_run)
            first, last = labels.get(CONVERSATION_LABEL), labels.get(CONTINUES_LABEL)
            if interactive:
                print(f"verity chat on {agent.model.name}: {COMMANDS}", file=sys.stderr)
            while (line := await _read_line(interactive)) is not None:
                text = line.strip()
                if text in ("/exit", "/quit"):
                    break
                if text == "/new":
                    history, first, last = [], None, None
                    continue
                if not text:
                    continue
                labels = {CONVERSATION_LABEL: first or "", CONTINUES_LABEL: last or ""}
                try:
                    result = await agent.run(
                        text, history=history, labels={k: v for k, v in labels.items() if v}
                    )
                except (RunError, ModelError) as exc:  # this turn failed; the conversation stays
                    print(f"verity: {exc}", file=sys.stderr)
                    code = max(code, EXIT_RUN_ERROR)
                    continue
                if result.status in ("rejected", "tools_unavailable"):
                    # as `verity run`: a refused answer never reaches stdout as if it were one
                    print(f"verity: {result.status}: {result.reason}", file=sys.stderr)
                    code = max(code, EXIT_REJECTED)
                else:
                    print(printable(result.answer), flush=True)
                history, last = result.messages, result.run_id
                first = first or result.run_id
        return code

    return run_interruptibly(converse)


async def _read_line(interactive: bool) -> str | None:
    """The next line of stdin (None at its end), read without blocking the event loop."""

    def read() -> str | None:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        return line if line else None

    return await anyio.to_thread.run_sync(read, abandon_on_cancel=True)
