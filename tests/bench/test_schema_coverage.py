"""bench/schema_coverage.py as CI runs it: the official JSON Schema Test Suite never crashes the
grammar path, and a native crash of the baseline is counted, not fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

SUITE = PROJECT_ROOT.parent / "shared" / "bench" / "json-schema-test-suite"


def coverage(data: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "bench/schema_coverage.py", "--data", str(data), "--json", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.slow
def test_every_test_suite_schema_is_exact_relaxed_or_unavailable_with_a_reason() -> None:
    if not (SUITE / "optional").is_dir():
        pytest.skip(f"the JSON Schema Test Suite is not at {SUITE}")
    report = coverage(SUITE, "--no-baseline")
    assert report["crashes"] == 0
    assert report["schemas"] > 400
    assert report["exact"] + report["relaxed"] + report["unavailable"] == report["schemas"]
    unavailable = [r for r in report["not_exact"].values() if r["level"] == "unavailable"]
    assert len(unavailable) == report["unavailable"]
    assert all(r["reason"] for r in unavailable)  # remote $refs, for one
    relaxed = [r for r in report["not_exact"].values() if r["level"] in ("relaxed", "any")]
    assert all(r["dropped"] for r in relaxed)
    # what an exact grammar lets through is valid, and post-validation catches most of the rest
    assert report["valid_accepted"] > 0.9 and report["invalid_rejected"] > 0.7


@pytest.mark.slow
def test_a_native_crash_is_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "long.json").write_text(
        json.dumps(
            {"type": "object", "properties": {"text": {"type": "string", "maxLength": 32767}}}
        )
    )
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "nested" / "deeper" / "dangling.json").write_text(
        json.dumps({"type": "object", "properties": {"k": {"$ref": "#/definitions/K"}}})
    )
    (tmp_path / "notes.json").write_text("not JSON")
    report = coverage(tmp_path)
    # llama.cpp's GBNF parser overflows its stack on the 32767-fold repetition (SIGSEGV)
    assert (report["baseline"]["crashes"], report["baseline"]["unavailable"]) == (1, 1)
    assert (report["crashes"], report["relaxed"], report["unavailable"]) == (0, 1, 1)
    assert report["not_exact"] == {
        "long.json": {
            "level": "relaxed",
            "dropped": ["maxLength"],
            "reason": "past Verity's bounds on what reaches the engine: maxLength",
        },
        "nested/deeper/dangling.json": {
            "level": "unavailable",
            "reason": "its $ref '#/definitions/K' cannot be resolved",
        },
    }
    assert report["unreadable_files"] == ["notes.json"]
