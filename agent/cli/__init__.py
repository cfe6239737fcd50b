"""The `verity` command: argv → settings → run → print. Each VerityError maps to an exit code.

One module per command family: `run` (run a task), `traces` (logs, show), `mcp` (mcp list, call,
read, prompt; MCP options of run), `model` (options for an OpenAI-compatible server), `models`
(the models Verity can find), `serve` (Verity as an MCP server). Each adds its parsers with
`add_commands(commands)` and sets the `handler` its commands call. `config` fills the options
left unset from the config file and the `VERITY_*` variables before the handler runs.
"""

# ruff: noqa: T201 - the command line: printing is its job
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from verity.cli import _signals
from verity.cli._arguments import check_text_arguments
from verity.cli._common import EXIT_INTERRUPTED, EXIT_MODEL_ERROR, EXIT_RUN_ERROR, EXIT_USER_ERROR
from verity.errors import ModelError, RunError, UserError, VerityError

__all__ = ["main"]


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `verity` parser for `argv`: whole for the command it names (or for every command
    when `argv` is None), the other commands only listed."""
    parser = argparse.ArgumentParser(
        prog="verity",
        description="Run a local reasoning model as a dependable tool-using agent.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the versions and whether llama.cpp can offload to a GPU",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else _chosen_command(argv)
    added: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if name in added:
            continue
        if argv is None or module == COMMANDS.get(chosen or "", ("", ""))[0]:
            # the command asked for: its module, and all it brings with it, is imported
            adder, _, function = module.partition(":")
            names_before = set(commands.choices)
            getattr(importlib.import_module(adder), function or "add_commands")(commands)
            added |= set(commands.choices) - names_before
        else:
            commands.add_parser(name, help=help_text)  # listed in --help; never run
    return parser


COMMANDS = {
    "run": ("verity.cli.run", "run an agent on a task and print the answer"),
    "logs": ("verity.cli.traces", "list runs from the trace database, newest first"),
    "show": ("verity.cli.traces", "show one run as a tree, with the full text"),
    "export": ("verity.cli.traces", "export runs as JSON lines or OTLP JSON spans"),
    "replay": (
        "verity.cli.traces:add_replay_command",
        "re-run a run on its recorded model outputs, executing the tools again",
    ),
    "mcp": ("verity.cli.mcp:add_mcp_commands", "list, call, debug and import MCP servers"),
    "models": (
        "verity.cli.models",
        "list the models Verity can find: embedded, Ollama's, Hugging Face's",
    ),
    "serve": ("verity.cli.serve", "serve Verity as an MCP server (stdio, or --http)"),
    "stats": ("verity.cli.stats", "tokens per day and model, and their cost on each priced API"),
    "chat": ("verity.cli.chat", "a conversation: a turn per line, the model kept warm"),
    "batch": (
        "verity.cli.batch",
        "run every task of a JSON Lines file; resumable, scored against answers",
    ),
}
"""Each command: the module (and function) that adds its parser, and its line in `--help`.

Only the chosen command's module is imported: the others bring in llama.cpp, the MCP SDK or
httpx, which `verity --help`, `logs` and `show` never need (a test keeps the lines in step)."""


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


class _VersionAction(argparse.Action):
    """`--version`: computed only when asked, as it imports llama.cpp."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(_version())
        parser.exit()


def _version() -> str:
    import importlib.metadata

    versions = []
    for package in ("verity-agent", "llama-cpp-python"):
        try:
            versions.append(importlib.metadata.version(package))
        except importlib.metadata.PackageNotFoundError:
            versions.append("not installed")
    try:
        import llama_cpp

        offload = "yes" if llama_cpp.llama_supports_gpu_offload() else "no (CPU-only build)"
    except (ImportError, OSError):
        offload = "unknown (llama_cpp does not import)"
    return f"verity {versions[0]} (llama-cpp-python {versions[1]}, GPU offload: {offload})"


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """One line per warning, without the source location a user cannot act on."""
    print(f"verity: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `verity` command; returns the exit code."""
    _signals.install()
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        early = ("run", "chat", "batch")
        if _chosen_command(words) in early and not {"-h", "--help"} & set(words):
            from verity.cli._early_servers import start_servers_early

            start_servers_early(words)  # they start while the command's modules import
        args = _parser(words).parse_args(words)
    except _signals.Interrupted as exc:
        return _interrupted(exc)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _handle(args)


def _report_model_warnings() -> None:
    """The model's warnings (a loop stopped, a prefix cache it cannot write) on stderr."""
    logger = logging.getLogger("verity.models")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("verity: warning: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def _handle(args: argparse.Namespace) -> int:
    from verity.cli.config import apply_defaults, load_defaults  # pydantic: not for --help

    _report_model_warnings()
    try:
        check_text_arguments(args)
        apply_defaults(args, load_defaults())
        code: int = args.handler(args)
        return code
    except UserError as exc:
        print(f"verity: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModelError as exc:
        print(f"verity: model error: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    except RunError as exc:
        print(f"verity: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except VerityError as exc:
        print(f"verity: error: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    except _signals.Interrupted as exc:
        return _interrupted(exc)
    except KeyboardInterrupt:
        print("verity: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `verity logs | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _interrupted(exc: _signals.Interrupted) -> int:
    print(f"verity: interrupted by {exc.name}", file=sys.stderr)
    return exc.exit_code
