"""What recorded tokens would cost on an API: a price table read from TOML (prices are data)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import platformdirs

from verity.errors import UserError

__all__ = ["Price", "load_prices", "prices_path"]

PRICES_FILE = "prices.toml"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens on one API."""

    name: str
    input: float
    output: float
    cached_input: float | None = None
    """Price of a prompt token found in the API's prompt cache; None: same as `input`."""
    note: str = ""

    def cost(self, input_tokens: int, output_tokens: int, *, cached_tokens: int = 0) -> float:
        """Dollars for these tokens; `cached_tokens` of the input are priced as cache hits."""
        cached = min(max(cached_tokens, 0), input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        dollars = (input_tokens - cached) * self.input + cached * cached_price
        return (dollars + output_tokens * self.output) / 1_000_000


def prices_path(environ: Mapping[str, str] | None = None) -> Path:
    """The user's price file: `$VERITY_PRICES`, else prices.toml in the user config dir."""
    environ = os.environ if environ is None else environ
    if configured := environ.get("VERITY_PRICES"):
        return Path(configured)
    return Path(platformdirs.user_config_dir("verity")) / PRICES_FILE


def load_prices(path: Path | None = None) -> dict[str, Price]:
    """Verity's default prices, each table of the user's file (if any) replacing its namesake.

    Raises:
        UserError: the user's file is not valid TOML or a price is missing or not a number.
    """
    shipped = resources.files("verity").joinpath(PRICES_FILE).read_text(encoding="utf-8")
    tables: dict[str, Any] = tomllib.loads(shipped)
    path = prices_path() if path is None else path
    if path.is_file():
        try:
            tables |= tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(
                f"{path}: not a valid TOML price table ({exc}).", field="prices"
            ) from None
    return {name: _price(name, table, path) for name, table in tables.items()}


def _price(name: str, table: Any, path: Path) -> Price:
    if not isinstance(table, dict):
        raise UserError(
            f"{path}: [{name}] must be a table with input and output prices.", field="prices"
        )
    values: dict[str, float] = {}
    for key in ("input", "output", "cached_input"):
        value = table.get(key)
        if value is None and key == "cached_input":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UserError(
                f"{path}: [{name}] {key} must be a number of dollars per million tokens (>= 0), "
                f"not {value!r}.",
                field="prices",
            )
        values[key] = float(value)
    return Price(name=name, note=str(table.get("note", "")), **values)
