"""Intervals, the paired test and the per-case cache of bench/bfcl.py (they decide what a
benchmark claims, so they are checked against known values)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bfcl_cache import OutcomeCache
from bench.bfcl_scoring import Outcome
from bench.bfcl_stats import paired, sign_test_p, wilson


def test_wilson_interval_matches_known_values() -> None:
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_sign_test_is_the_exact_two_sided_binomial() -> None:
    assert sign_test_p(0, 6) == pytest.approx(2 / 64)
    assert sign_test_p(1, 8) == pytest.approx(2 * 10 / 512)
    assert sign_test_p(8, 1) == sign_test_p(1, 8)
    assert sign_test_p(3, 3) == 1.0
    assert sign_test_p(0, 0) == 1.0


def test_paired_counts_only_discordant_cases_and_flags_a_significant_loss() -> None:
    ours = [False] * 7 + [True] * 3
    baseline = [True] * 7 + [True] * 3
    result = paired(ours, baseline)
    assert (result.wins, result.losses, result.n) == (0, 7, 10)
    assert result.difference == pytest.approx(-70.0)
    assert result.significantly_below
    assert not paired(baseline, ours).significantly_below  # a significant gain is not a loss
    assert not paired([True, False], [False, True]).significantly_below


def test_cache_returns_outcomes_of_the_same_version_only(tmp_path: Path) -> None:
    outcome = Outcome([("f", {"x": 1})], parsed=True, schema_valid=True, seconds=1.5, text="{}")
    OutcomeCache(tmp_path, "verity", "v1").put("case_1", outcome)
    with (tmp_path / "verity.jsonl").open("a") as handle:
        handle.write('{"case": "case_2", "vers')  # a line cut short by a killed run
    assert OutcomeCache(tmp_path, "verity", "v1").get("case_1") == outcome
    assert OutcomeCache(tmp_path, "verity", "v1").get("case_2") is None
    assert OutcomeCache(tmp_path, "verity", "v2").get("case_1") is None
    assert OutcomeCache(tmp_path, "free", "v1").get("case_1") is None
