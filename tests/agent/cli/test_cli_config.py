"""The `verity` command's defaults: --version, the task from stdin, the config file, `VERITY_*`."""

from __future__ import annotations

import importlib.metadata
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
from verity.cli.config import FILE_ONLY, Defaults

UNREACHABLE = ["--base-url", "http://127.0.0.1:9/v1", "--api-model", "m"]
"""A server that refuses connections: the run starts and is recorded, then fails with exit 3."""


def verity(
    *args: str, home: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command, with no VERITY_* variable but those given and its config file in `home`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_")}
    environment.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "VERITY_CONFIG": str(home / "config.toml"),
            "VERITY_TRACE_DB": str(home / "traces.db"),
            **(env or {}),
        }
    )
    (home / "config.toml").touch()
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=300,
    )


def recorded_tasks(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [task for (task,) in conn.execute("select task from runs order by started_at")]


def test_version_names_verity_llama_cpp_python_and_gpu_offload(tmp_path: Path) -> None:
    done = verity("--version", home=tmp_path)
    assert done.returncode == 0, done.stderr
    offload = "yes" if llama_cpp.llama_supports_gpu_offload() else "no (CPU-only build)"
    assert done.stdout == (
        f"verity {importlib.metadata.version('verity-agent')} (llama-cpp-python "
        f"{importlib.metadata.version('llama-cpp-python')}, GPU offload: {offload})\n"
    )


@pytest.mark.parametrize("form", [[], ["-"]], ids=["no task", "dash"])
def test_the_task_is_read_from_stdin(tmp_path: Path, form: list[str]) -> None:
    task = "What is 21 * 2?\nAnswer with the number.\n"
    done = verity("run", *form, *UNREACHABLE, home=tmp_path, stdin=task)
    assert done.returncode == 3, done.stderr  # the server is unreachable: the run was started
    assert "Traceback" not in done.stderr
    assert recorded_tasks(tmp_path / "traces.db") == [task]


def test_an_empty_stdin_is_an_empty_task(tmp_path: Path) -> None:
    done = verity("run", "-", home=tmp_path, stdin="  \n")
    assert (done.returncode, done.stderr) == (
        2,
        'verity: error: The task is empty. Say what the agent should do, e.g. verity run "What is '
        '1234 * 5678 + 17?"\n',
    )


def test_no_task_on_a_terminal_says_how_to_give_one(tmp_path: Path) -> None:
    parent, child = pty.openpty()
    (tmp_path / "config.toml").touch()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_")}
    environment.update(
        {"PYTHONPATH": str(PROJECT_ROOT), "VERITY_CONFIG": str(tmp_path / "config.toml")}
    )
    done = subprocess.run(
        [sys.executable, "-m", "verity", "run"],
        stdin=child,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=environment,
        timeout=120,
    )
    os.close(child)
    os.close(parent)
    assert (done.returncode, done.stderr) == (
        2,
        'verity: error: Say what the agent should do: verity run "What is 1234 * 5678 + 17?", or '
        "pipe the task in: echo TASK | verity run\n",
    )


def test_the_config_file_sets_defaults_that_variables_and_options_override(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'model = "{tmp_path / "from-file.gguf"}"\ntrace_db = "{tmp_path / "file.db"}"\n'
    )
    variable = {"VERITY_MODEL": str(tmp_path / "from-variable.gguf")}
    option = ["--model", str(tmp_path / "from-option.gguf")]
    for extra_env, extra_args, chosen in [
        ({}, [], "from-file"),
        (variable, [], "from-variable"),
        (variable, option, "from-option"),
    ]:
        done = verity("run", "hi", *extra_args, home=tmp_path, env=extra_env)
        assert done.returncode == 2
        assert done.stderr.startswith(
            f"verity: error: Model file '{tmp_path / chosen}.gguf' does not exist."
        )
    logs = verity("logs", home=tmp_path, env={"VERITY_TRACE_DB": ""})
    assert logs.returncode == 0, logs.stderr
    assert (tmp_path / "file.db").is_file()  # the file's trace_db, the variable being empty


def test_a_configured_value_applies_to_every_option(tmp_path: Path) -> None:
    # max_steps from the file; with a server that refuses, the run fails at step 1 either way,
    # so the file's value is checked through its validation
    (tmp_path / "config.toml").write_text("max_steps = 0\n")
    done = verity("run", "hi", home=tmp_path)
    assert done.stderr == (
        f"verity: error: {tmp_path / 'config.toml'}: max_steps must be at least 1, not 0. Fix the "
        "value, or remove the key.\n"
    )
    (tmp_path / "config.toml").write_text("max_steps = 2\n")
    done = verity("run", "hi", "--max-steps", "0", home=tmp_path)
    assert done.stderr == "verity: error: --max-steps must be at least 1, not 0.\n"


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        (
            'n_gpu_layers = "all"\n',
            {},
            "{file}: n_gpu_layers must be a valid integer, not 'all'. Fix the value, or remove the "
            "key.",
        ),
        (
            'modle = "x.gguf"\n',
            {},
            "{file}: unknown key 'modle'. Remove it; the keys are: "
            + ", ".join(Defaults.model_fields)
            + ".",
        ),
        (
            "flash_attn = \n",
            {},
            "{file}: not valid TOML (Invalid value (at line 1, column 14)). Fix the file, or "
            "remove it.",
        ),
        (
            "",
            {"VERITY_N_GPU_LAYERS": "all"},
            "VERITY_N_GPU_LAYERS must be a valid integer, not 'all'. Fix or unset it.",
        ),
    ],
    ids=["wrong type", "unknown key", "not TOML", "bad variable"],
)
def test_a_bad_config_is_one_line_naming_the_file_key_and_fix(
    tmp_path: Path, content: str, env: dict[str, str], message: str
) -> None:
    (tmp_path / "config.toml").write_text(content)
    done = verity("logs", home=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr == f"verity: error: {message.format(file=tmp_path / 'config.toml')}\n"


def test_a_missing_config_named_by_verity_config_is_an_error(tmp_path: Path) -> None:
    done = verity("logs", home=tmp_path, env={"VERITY_CONFIG": str(tmp_path / "nope.toml")})
    assert done.returncode == 2
    assert done.stderr == (
        f"verity: error: VERITY_CONFIG names '{tmp_path / 'nope.toml'}', which is not a file. "
        "Point it at a config.toml, or unset it.\n"
    )


def test_every_verity_variable_in_the_code_is_in_the_configuration_table() -> None:
    sources = [
        path
        for folder in ("agent", "tools", "servers")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if "/tools/tools/" not in str(path) and "/agent/servers/" not in str(path)
    ]
    in_code = {m for p in sources for m in re.findall(r"VERITY_[A-Z_]*[A-Z]", p.read_text())}
    in_code |= {f"VERITY_{key.upper()}" for key in Defaults.model_fields.keys() - FILE_ONLY}
    in_code.discard("VERITY_")
    documented = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    in_table = set(re.findall(r"^\| `(VERITY_[A-Z_]+)` \|", documented, re.M))
    assert in_code == in_table
