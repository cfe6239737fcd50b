"""Checks every command's arguments share, before a handler sees them."""

from __future__ import annotations

import argparse

from verity.errors import UserError

__all__ = ["check_text_arguments"]


def check_text_arguments(args: argparse.Namespace) -> None:
    """Refuse text arguments that are not UTF-8, except the task (answered with U+FFFD in place
    of the bytes that are not).

    Python hands undecodable argv bytes over as lone surrogates; they would fail later, deep in
    tokenising, JSON or SQLite, with a traceback.

    Raises:
        UserError: an argument holds bytes that are not UTF-8, named with the first such byte.
    """
    for name, value in vars(args).items():
        if not isinstance(value, str) or name == "task":
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            byte = value[exc.start].encode("utf-8", "surrogateescape")[0]
            raise UserError(
                f"The {name} argument is not valid UTF-8 text (byte {byte:#04x} at character "
                f"{exc.start + 1}). Pass it in UTF-8.",
                field=name,
            ) from None
