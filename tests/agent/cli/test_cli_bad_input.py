"""Bad input to the `verity` command: one line naming what was wrong, never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.agent.cli.test_cli import verity
from tests.conftest import PROJECT_ROOT
from verity import embedded_model_path


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_an_option_that_is_not_utf8_is_named_with_its_first_bad_byte(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "verity", "run", "hi", "--system", b"caf\xe9 au lait"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: a loaded machine starts Python slowly
        env={**os.environ, "VERITY_TRACE_DB": str(tmp_path / "t.db")},
    )
    assert done.returncode == 2
    assert one_line(done) == (
        "verity: error: The system argument is not valid UTF-8 text (byte 0xe9 at character 4). "
        "Pass it in UTF-8."
    )


def test_an_n_ctx_past_32_bits_is_refused_not_wrapped(tmp_path: Path) -> None:
    done = verity("run", "hi", "--n-ctx", str(2**32 + 256), trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert one_line(done) == (
        "verity: error: --n-ctx must be at most 4294967295 (llama.cpp takes a 32-bit number), "
        "not 4294967552."
    )


def test_an_n_ctx_past_the_training_context_is_refused_before_loading(tmp_path: Path) -> None:
    name = embedded_model_path().name
    done = verity("run", "hi", "--n-ctx", "100000", trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert one_line(done) == (
        f"verity: error: n_ctx 100000 is larger than the 32768 tokens {name} was trained with; "
        "use at most 32768 (--n-ctx)."
    )


def test_logs_with_a_negative_limit_is_refused(tmp_path: Path) -> None:
    done = verity("logs", "-n", "-1", trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert one_line(done) == "verity: error: --limit must be at least 1, not -1."


def test_consensus_with_too_many_samples_is_refused_saying_why(tmp_path: Path) -> None:
    done = verity("run", "hi", "--verify", "consensus:100000", trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert one_line(done) == (
        "verity: error: consensus:100000 asks for 100000 samples; the most is 16. Each sample "
        "is a whole extra run of the task, so N multiplies the time a run takes."
    )


def test_a_password_in_the_base_url_is_never_printed_or_stored(tmp_path: Path) -> None:
    # nothing listens on port 9: the run fails, and its error is printed and stored
    db = tmp_path / "t.db"
    done = verity(
        "run",
        "hi",
        "--base-url",
        "http://alice:s3cret-pw@127.0.0.1:9/v1",
        "--api-model",
        "x",
        "--max-steps",
        "1",
        "--quiet",
        trace_db=db,
    )
    assert done.returncode == 3
    assert "s3cret-pw" not in done.stderr + done.stdout
    assert one_line(done).startswith("verity: model error: http://127.0.0.1:9/v1/chat/completions")
    with sqlite3.connect(db) as conn:
        stored = conn.execute("select * from runs").fetchall()
    assert len(stored) == 1
    assert "s3cret-pw" not in repr(stored)
    assert "127.0.0.1:9" in repr(stored)
