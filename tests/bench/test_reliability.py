"""The reliability suite's fast subset, as CI runs it: no crash, no lost acknowledged row, no
destructive call without approval, and every scenario actually tried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def test_the_fast_reliability_suite_counts_no_crash_lost_row_or_unapproved_call(
    tmp_path: Path,
) -> None:
    report, figures = tmp_path / "RELIABILITY.md", tmp_path / "figures.json"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_")}
    environment["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run(
        [
            sys.executable,
            "bench/reliability.py",
            "--fast",
            "--output",
            str(report),
            "--json",
            str(figures),
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in done.stderr, done.stderr
    rows = json.loads(figures.read_text())
    assert done.returncode == 0, done.stdout
    assert [(r["scenario"], r["crashes"], r["lost"], r["unapproved"]) for r in rows] == [
        (r["scenario"], 0, 0, 0) for r in rows
    ]
    assert [r["scenario"] for r in rows if r["total"] == 0] == []
    assert {r["scenario"] for r in rows} >= {
        "trace-writers",
        "serve-http",
        "fan-out",
        "kill-9",
        "disk-full",
        "server-dies",
        "ignores-sigterm",
        "server-hangs",
        "http-restart",
        "cancel-race",
        "tools-changed",
        "fuzz-mcp",
        "malformed-stdio",
        "malformed-http",
        "dns-rebinding",
        "auth",
        "prompt-injection",
        "tool-poisoning",
        "oversized-output",
    }
    text = report.read_text()
    assert "crashes 0, lost acknowledged rows 0, unapproved destructive calls 0." in text
