"""Verity starts where importing pandas would kill the process (seen with a CUDA llama.cpp build).

On a GPU image that ships pandas and pyarrow, `import sqlite_utils` (which imports pandas when it
is installed) after a CUDA build of llama_cpp aborted the process. A stand-in pandas that aborts
on import reproduces that on any machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture
def aborting_pandas_env(tmp_path: Path) -> dict[str, str]:
    package = tmp_path / "site" / "pandas"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import os\nos.abort()\n")
    path = os.pathsep.join([str(tmp_path / "site"), str(PROJECT_ROOT)])
    return {**os.environ, "PYTHONPATH": path, "VERITY_TRACE_DB": str(tmp_path / "t.db")}


def test_the_stand_in_pandas_kills_a_plain_sqlite_utils_import(
    aborting_pandas_env: dict[str, str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sqlite_utils"], env=aborting_pandas_env, capture_output=True
    )
    assert done.returncode == -signal.SIGABRT


def test_verity_imports_llama_cpp_and_its_trace_store_without_pandas(
    aborting_pandas_env: dict[str, str], tmp_path: Path
) -> None:
    script = (
        "import llama_cpp, verity, sys\n"
        "from verity.trace.store import TraceStore\n"
        f"TraceStore({str(tmp_path / 'x.db')!r})\n"
        "assert 'pandas' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=aborting_pandas_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_verity_logs_runs_where_pandas_would_abort(aborting_pandas_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "verity", "logs"],
        env=aborting_pandas_env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
