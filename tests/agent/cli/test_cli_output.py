"""What `verity run` shows while it works, on a terminal (a pseudo-terminal) and into pipes:
streamed answers, hidden or shown reasoning, step lines with elapsed time, loading progress,
the GPU warning, the token-limit hint, and a quiet --quiet."""

from __future__ import annotations

import os
import pty
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import llama_cpp
import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

TASK = "Write one sentence about the sea."
STEP_LINE = re.compile(r"^\[step \d+ \d+:\d\d\] ")
SUMMARY = re.compile(r"\[step (\d+) \d+:\d\d\] \d+ prompt tokens \(\d+ new\), \d+ generated in ")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_")}
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "config.toml").touch()
    env.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "VERITY_CONFIG": str(tmp_path / "config.toml"),
            "VERITY_TRACE_DB": str(tmp_path / "traces.db"),
            **extra,
        }
    )
    return env


def in_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run `verity` with stdin, stdout and stderr on one pseudo-terminal; all it wrote there
    (with the terminal's CR LF line ends back to LF)."""
    parent, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "verity", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=PROJECT_ROOT,
        env=env,
    )
    os.close(child)
    output = b""
    while True:
        try:
            data = os.read(parent, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        output += data
    os.close(parent)
    text = output.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return process.wait(timeout=600), text


def piped(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=600,
    )


def last_call(db: Path) -> tuple[str, str | None, str]:
    """Content, reasoning and finish reason of the run's last model call."""
    with sqlite3.connect(db) as conn:
        row: tuple[str, str | None, str] = conn.execute(
            "select content, reasoning, finish_reason from model_calls order by id desc limit 1"
        ).fetchone()
        return row


def screen_lines(output: str) -> list[str]:
    """The lines a terminal ends up showing: each redrawn working line replaced in place."""
    return [line.rpartition("\x1b[K")[2] for line in output.split("\n")]


def test_the_answer_streams_to_the_terminal_as_the_step_runs(tmp_path: Path) -> None:
    code, output = in_terminal("run", TASK, "--temperature", "0", env=environment(tmp_path))
    assert code == 0, output
    answer, _, _ = last_call(tmp_path / "traces.db")
    assert answer and output.count(answer) == 1  # streamed, and not printed again at the end
    summary = SUMMARY.search(output)
    assert summary is not None
    assert output.index(answer) < summary.start()  # written before the model call ended
    lines = screen_lines(output)
    assert "verity: loaded Qwen2.5-Coder-0.5B-Instruct (0.5 GB) in " in output
    steps = [line for line in lines if line.startswith("[step")]
    assert steps and all(STEP_LINE.match(line) for line in steps)
    assert "Traceback" not in output


def test_a_pipe_gets_only_the_final_answer_and_stderr_the_progress(tmp_path: Path) -> None:
    # a fresh cache: the embedded model is assembled from its parts, with progress
    env = environment(tmp_path, XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = piped("run", TASK, "--temperature", "0", env=env)
    assert done.returncode == 0, done.stderr
    answer, _, _ = last_call(tmp_path / "traces.db")
    assert done.stdout == answer + "\n"
    assert answer not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[:2] == [
        "verity: assembling the embedded model (first run only) (491 MB)...",
        "verity: assembling the embedded model (first run only): done",
    ]
    assert "verity: loading Qwen2.5-Coder-0.5B-Instruct (0.5 GB)..." in lines
    assert any(
        line.startswith("verity: loaded Qwen2.5-Coder-0.5B-Instruct (0.5 GB) in ") for line in lines
    )
    steps = [line for line in lines if line.startswith("[step")]
    assert steps[0] == "[step 1 0:00] model working..."
    assert all(STEP_LINE.match(line) for line in steps)
    assert any(SUMMARY.match(line) for line in steps)
    assert lines[-1].endswith(f"stored in {tmp_path / 'traces.db'}")


def test_reasoning_is_hidden_on_the_terminal_unless_asked_for(
    tmp_path: Path, thinking_model_path: Path
) -> None:
    args = ("run", TASK, "--model", str(thinking_model_path), "--max-thinking-tokens", "8")
    code, output = in_terminal(*args, env=environment(tmp_path))
    assert code == 0, output
    answer, reasoning, _ = last_call(tmp_path / "traces.db")
    assert reasoning and answer
    assert reasoning not in output
    assert output.count(answer) == 1

    shown = piped(*args, "--show-reasoning", env=environment(tmp_path / "shown"))
    assert shown.returncode == 0, shown.stderr
    answer, reasoning, _ = last_call(tmp_path / "shown" / "traces.db")
    assert reasoning and reasoning in shown.stderr
    assert shown.stdout == answer + "\n"


def test_gpu_layers_on_a_cpu_only_build_warn_once(tmp_path: Path) -> None:
    done = piped(
        "run",
        "hi",
        "--n-gpu-layers",
        "-1",
        "--max-steps",
        "1",
        "--max-tokens",
        "1",
        env=environment(tmp_path),
    )
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("verity: warning:")]
    if llama_cpp.llama_supports_gpu_offload():
        assert warnings == []
        return
    assert warnings == [
        "verity: warning: n_gpu_layers=-1 asks for GPU offload, but this llama-cpp-python is a "
        "CPU-only build (llama_supports_gpu_offload() is false), so the model runs on the CPU. "
        'Reinstall it for your GPU, e.g. CMAKE_ARGS="-DGGML_CUDA=on" pip install '
        "--force-reinstall --no-cache-dir llama-cpp-python (see docs/gpu.md)."
    ]


def test_at_the_token_limit_the_hint_names_max_tokens_and_the_text_is_shown(
    tmp_path: Path,
) -> None:
    done = piped(
        "run",
        "Write a long poem about the sea.",
        "--max-tokens",
        "6",
        "--max-steps",
        "1",
        "--temperature",
        "0",
        env=environment(tmp_path),
    )
    assert done.returncode == 4
    content, _, finish = last_call(tmp_path / "traces.db")
    assert finish == "length" and content
    lines = done.stderr.splitlines()
    assert lines[-1].startswith(
        "verity: No final answer after 1 steps (max_steps). The last answer was cut off at the "
        "token limit: raise --max-tokens (ModelSettings.max_tokens), or ask for a shorter answer."
    )
    assert f"verity: the cut-off text of the last step:\n{content}\n" in done.stderr
    assert done.stdout == ""


def test_quiet_prints_the_answer_alone_with_the_system_prompt_given(tmp_path: Path) -> None:
    done = piped(
        "run",
        "--quiet",
        "--system",
        "You are a parrot. Whatever the user says, you reply with the single word SQUAWK and "
        "nothing else.",
        "Tell me about the weather in Paris.",
        env=environment(tmp_path),
    )
    assert done.returncode == 0
    assert done.stderr == ""
    answer, _, _ = last_call(tmp_path / "traces.db")
    assert done.stdout == answer + "\n"
    assert "SQUAWK" in answer.upper()
