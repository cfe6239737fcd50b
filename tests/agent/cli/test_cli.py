"""The `verity` command, run as a user would: a real subprocess, a real model, a real database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


def verity(
    *args: str, trace_db: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "VERITY_MODEL"}
    environment.update({"VERITY_TRACE_DB": str(trace_db), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_run_answers_with_the_calculator_and_records_the_run(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    done = verity("run", "What is 1234 * 5678 + 17?", trace_db=db)
    assert done.returncode == 0, done.stderr
    assert "7006669" in done.stdout
    assert "Traceback" not in done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("verity: run ") and last_line.endswith(f"stored in {db}")
    run_id = last_line.split()[2]
    with sqlite3.connect(db) as conn:
        status, answer = conn.execute(
            "select status, answer from runs where id=?", [run_id]
        ).fetchone()
        tools = conn.execute(
            "select tool_name, arguments, result, is_error from tool_calls where run_id=?", [run_id]
        ).fetchall()
        model_calls = conn.execute(
            "select input_tokens, output_tokens, duration_s from model_calls where run_id=?",
            [run_id],
        ).fetchall()
    assert (status, answer) == ("completed", done.stdout.strip())
    assert [(name, result, err) for name, _, result, err in tools] == [("calculator", "7006669", 0)]
    assert len(model_calls) == 2
    assert all(i > 0 and o > 0 and d > 0 for i, o, d in model_calls)


@pytest.mark.slow
def test_json_output_is_one_object_and_logs_and_show_list_the_run(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    done = verity("run", "What is 21 * 2?", "--json", "--quiet", trace_db=db)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    payload = json.loads(done.stdout)
    assert "42" in payload["answer"]
    assert payload["verified"] is None  # no verifier ran
    assert payload["trace_db"] == str(db)
    logs = verity("logs", trace_db=db)
    assert payload["run_id"] in logs.stdout and "completed" in logs.stdout
    show = verity("show", payload["run_id"], trace_db=db)
    assert show.returncode == 0
    assert "calculator(" in show.stdout


@pytest.mark.slow
def test_max_steps_exhausted_exits_non_zero_and_marks_the_run(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    done = verity("run", "What is 1234 * 5678 + 17?", "--max-steps", "1", trace_db=db)
    assert done.returncode == 4
    assert "Traceback" not in done.stderr
    assert "No final answer after 1 steps (max_steps). Raise --max-steps" in done.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select status from runs").fetchall()
        tool_calls = conn.execute("select count(*) from tool_calls").fetchone()[0]
    assert rows == [("limit_exceeded",)]
    assert tool_calls == 1


@pytest.mark.slow
def test_a_model_without_tool_template_runs_end_to_end(tmp_path: Path, smollm2_path: Path) -> None:
    # SmolLM2-135M gets the generic JSON format; at 135M whether it answers in time is luck
    db = tmp_path / "traces.db"
    done = verity(
        "run", "--model", str(smollm2_path), "What is 12*12?", "--max-steps", "3", trace_db=db
    )
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 4), done.stderr
    with sqlite3.connect(db) as conn:
        (status,) = conn.execute("select status from runs").fetchone()
        tools = conn.execute("select tool_name, is_error from tool_calls").fetchall()
    if done.returncode == 0:
        assert (status, bool(done.stdout.strip())) == ("completed", True)
    else:
        assert "No final answer after 3 steps (max_steps)." in done.stderr
        assert status == "limit_exceeded"
    assert all(name == "calculator" for name, _ in tools)


def test_an_unknown_model_path_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    done = verity(
        "run", "hi", "--model", str(tmp_path / "missing.gguf"), trace_db=tmp_path / "t.db"
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"verity: error: Model file '{tmp_path / 'missing.gguf'}' does not exist."
    )
    assert "Traceback" not in done.stderr


def test_a_corrupt_gguf_exits_3_without_a_traceback(tmp_path: Path) -> None:
    model = tmp_path / "broken.gguf"
    model.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 1024)
    db = tmp_path / "t.db"
    done = verity("run", "hi", trace_db=db, env={"VERITY_MODEL": str(model)})
    assert done.returncode == 3
    assert "llama.cpp could not load" in done.stderr
    assert "Traceback" not in done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status from runs").fetchall() == [("failed",)]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-thinking-tokens", "0", "--max-thinking-tokens must be at least 1, not 0."),
        ("--n-ctx", "100", "--n-ctx must be at least 256, not 100."),
    ],
)
def test_an_invalid_model_option_exits_2_naming_the_option(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    # a missing model file would exit 2 too, so the message shows the option was checked first
    model = tmp_path / "missing.gguf"
    done = verity("run", "hi", "--model", str(model), option, value, trace_db=tmp_path / "t.db")
    assert (done.returncode, done.stderr) == (2, f"verity: error: {message}\n")


def test_an_empty_task_exits_2(tmp_path: Path) -> None:
    done = verity("run", "  ", trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert done.stderr == (
        "verity: error: The task is empty. Say what the agent should do, e.g. verity run "
        '"What is 1234 * 5678 + 17?"\n'
    )


def test_show_of_an_unknown_run_exits_2(tmp_path: Path) -> None:
    done = verity("show", "nope", trace_db=tmp_path / "t.db")
    assert done.returncode == 2
    assert "No run 'nope'" in done.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = verity("--help", trace_db=tmp_path / "t.db")
    assert done.returncode == 0
    assert all(command in done.stdout for command in ("run", "logs", "show"))


def test_base_url_without_api_model_exits_2(tmp_path: Path) -> None:
    done = verity(
        "run",
        "hi",
        "--base-url",
        "http://127.0.0.1:9/v1",
        trace_db=tmp_path / "t.db",
        env={"VERITY_API_MODEL": ""},
    )
    assert done.returncode == 2
    assert done.stderr.startswith("verity: error: --base-url needs --api-model NAME")
    assert len(done.stderr.strip().splitlines()) == 1


def test_model_with_base_url_exits_2_naming_both(tmp_path: Path) -> None:
    done = verity(
        "run",
        "hi",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--api-model",
        "x",
        "--model",
        str(tmp_path / "m.gguf"),
        trace_db=tmp_path / "t.db",
    )
    assert (done.returncode, done.stderr) == (
        2,
        "verity: error: --model is for a local GGUF model; it cannot be combined with "
        "--base-url.\n",
    )


def test_an_unreachable_server_exits_3_with_one_line(tmp_path: Path) -> None:
    # nothing listens on port 9; 4 attempts with 0.5 + 1 + 2 s of backoff take about 4 s
    url = "http://127.0.0.1:9/v1"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verity",
            "run",
            "hi",
            "--base-url",
            url,
            "--api-model",
            "x",
            "--max-steps",
            "1",
            "--quiet",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # the backoff is about 4 s; a loaded machine can take longer to start
        env={**os.environ, "VERITY_TRACE_DB": str(tmp_path / "t.db")},
    )
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"verity: model error: {url}/chat/completions")
    assert done.stdout == ""


@pytest.mark.slow
def test_run_against_a_real_server_uses_the_calculator(tmp_path: Path, server_url: str) -> None:
    db = tmp_path / "traces.db"
    done = verity(
        "run",
        "What is 1234 * 5678 + 17?",
        "--base-url",
        server_url,
        "--api-model",
        "embedded",
        "--temperature",
        "0",
        "--stream",
        "--quiet",
        trace_db=db,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with sqlite3.connect(db) as conn:
        tools = conn.execute("select tool_name, result from tool_calls").fetchall()
    assert ("calculator", "7006669") in tools
    assert "7006669" in done.stdout
