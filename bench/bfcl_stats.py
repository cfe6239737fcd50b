"""Intervals and paired tests for benchmark accuracies (small samples, so exact where it counts)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Paired", "paired", "sign_test_p", "wilson"]

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion, as fractions (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact p-value that wins and losses are equally likely (exact McNemar test on
    the discordant pairs)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return float(min(1.0, 2 * tail))


@dataclass(frozen=True)
class Paired:
    """One system against a baseline on the same cases."""

    wins: int
    """Cases only the system got right."""
    losses: int
    """Cases only the baseline got right."""
    n: int
    difference: float
    """Accuracy difference in points (system minus baseline)."""
    p_value: float

    @property
    def significantly_below(self) -> bool:
        """Worse than the baseline at the 95% level (two-sided exact test)."""
        return self.losses > self.wins and self.p_value < 0.05


def paired(ours: list[bool], baseline: list[bool]) -> Paired:
    """Win/loss counts, the difference in points and the exact paired test."""
    if len(ours) != len(baseline):
        raise ValueError("paired() needs results on the same cases")
    wins = sum(a and not b for a, b in zip(ours, baseline, strict=True))
    losses = sum(b and not a for a, b in zip(ours, baseline, strict=True))
    n = len(ours)
    difference = 100 * (wins - losses) / n if n else 0.0
    return Paired(wins, losses, n, difference, sign_test_p(wins, losses))
