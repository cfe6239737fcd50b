"""Ctrl-C or SIGTERM while the `verity` command is still importing: one line and the usual code.

The command's own handlers (`verity.cli._signals`) are installed once its modules are imported,
a second or two after the process starts. A signal before then would print a KeyboardInterrupt
traceback (SIGINT) or kill the process outright (SIGTERM, exit -15). So when this process is the
command, the package installs these handlers first: nothing has been opened or written yet, so
the process can simply say why and exit. The package imports this module first, which
installs them; a library import is left alone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

__all__: list[str] = []


def _is_the_command() -> bool:
    """`python -m verity[.x]`, or the `verity` console script."""
    argv = sys.orig_argv
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1].split(".")[0] == "verity"
    return os.path.basename(sys.argv[0]) == "verity"


def _exit_now(signum: int, _frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    os.write(sys.stderr.fileno(), f"verity: interrupted by {name}\n".encode())
    os._exit(128 + signum)


if _is_the_command() and threading.current_thread() is threading.main_thread():
    for _signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_signum, _exit_now)
