"""`LlamaCppModel.start_loading()`: the weights load in a background thread; the first call
waits for them, gets the load's error, and `close()` frees what the load left."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from verity import LlamaCppModel, Message, ModelError, ModelSettings
from verity.models._loaded import load_model

QUESTION = [Message(role="user", content="What is the capital of France? One word.")]
LOAD_THREAD = "verity-model-load"


def load_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LOAD_THREAD]


def counted_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each load of the weights, by the thread that did it."""
    loads: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(threading.current_thread().name)
        return load_model(*args, **kwargs)

    monkeypatch.setattr("verity.models.llama_cpp.load_model", counting)
    return loads


@pytest.mark.slow
def test_the_first_call_uses_the_weights_loaded_in_the_background(
    embedded_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = counted_loads(monkeypatch)
    model = LlamaCppModel(embedded_path, ModelSettings(temperature=0, n_ctx=2048, max_tokens=8))
    try:
        model.start_loading()
        model.start_loading()  # already loading: nothing more
        response = anyio.run(model.respond, QUESTION, [])
        model.start_loading()  # loaded: nothing more
        assert response.content.strip()
        assert loads == [LOAD_THREAD]
    finally:
        model.close()
    assert not load_threads()


@pytest.mark.slow
@pytest.mark.parametrize("wait_s", [0.0, 0.2])
def test_close_while_loading_in_the_background_leaves_nothing_loaded(
    embedded_path: Path, monkeypatch: pytest.MonkeyPatch, wait_s: float
) -> None:
    loads = counted_loads(monkeypatch)
    model = LlamaCppModel(embedded_path, ModelSettings(temperature=0, n_ctx=2048, max_tokens=8))
    model.start_loading()
    time.sleep(wait_s)  # 0: before the load began; 0.2: inside llama.cpp's loader
    model.close()
    for thread in load_threads():
        thread.join(timeout=60)
    assert model.chat_template is None  # nothing loaded is left behind
    assert len(loads) <= 1
    try:  # and loads again for a later call, as a closed model does
        assert anyio.run(model.respond, QUESTION, []).content.strip()
    finally:
        model.close()


def test_a_background_load_that_failed_is_the_first_calls_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))  # the magic, then nothing llama.cpp reads
    model = LlamaCppModel(broken)
    model.start_loading()
    for thread in load_threads():
        thread.join(timeout=60)
    for _ in range(2):  # the background load's error, then a load of its own that fails alike
        with pytest.raises(ModelError, match="llama.cpp could not load"):
            anyio.run(model.respond, QUESTION, [])
    model.close()


@pytest.mark.slow
def test_what_other_threads_write_while_a_model_loads_is_not_lost(
    embedded_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """llama-cpp-python points fds 1 and 2 at /dev/null while it loads; a model loading in the
    background would swallow the run's own messages meanwhile."""
    model = LlamaCppModel(embedded_path, ModelSettings(n_ctx=2048))
    written = 0

    def write_until_loaded() -> None:
        nonlocal written
        while load_threads() or written == 0:
            print(f"tick {written}", file=sys.stderr, flush=True)
            os.write(1, f"tock {written}\n".encode())
            written += 1
            time.sleep(0.002)

    try:
        model.start_loading()
        writer = threading.Thread(target=write_until_loaded)
        writer.start()
        writer.join(timeout=120)
        assert model.chat_template is not None  # the load ended while the writer wrote
    finally:
        model.close()
    captured = capfd.readouterr()
    assert written > 10  # the writer ran while the model loaded
    assert captured.err.count("tick ") == written
    assert captured.out.count("tock ") == written
