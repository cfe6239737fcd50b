"""The prefix cache's disk store on real files: keys checked inside entries, corruption, LRU
eviction, concurrent writers in separate processes, and the model digest memo."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import PROJECT_ROOT
from verity.models._file_digest import model_sha256
from verity.models._prefix_store import PrefixKey, PrefixStore

MODEL_A = "a" * 64
MODEL_B = "b" * 64
CONTEXT = {"llama_cpp": "0.3.36", "type_k": "f16", "type_v": "f16", "flash_attn": False}


def key(model: str = MODEL_A, tokens: tuple[int, ...] = (1, 2, 3)) -> PrefixKey:
    return PrefixKey(model, tokens, CONTEXT)


def test_a_saved_state_loads_back_for_its_key_only(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, max_bytes=1 << 20)
    assert store.save(key(), b"state after 1 2 3")
    assert store.load(key()) == bytearray(b"state after 1 2 3")
    assert store.load(key(MODEL_B)) is None
    assert store.load(key(tokens=(1, 2))) is None
    assert store.load(PrefixKey(MODEL_A, (1, 2, 3), CONTEXT | {"type_k": "q8_0"})) is None


def test_an_entry_under_another_keys_name_is_never_served_and_is_removed(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, max_bytes=1 << 20)
    store.save(key(MODEL_A), b"model A's state")
    # whatever a file is called, what it holds decides: model A's entry named as model B's
    store.path_for(key(MODEL_A)).rename(store.path_for(key(MODEL_B)))
    assert store.load(key(MODEL_B)) is None
    assert store.entries() == []


def test_a_truncated_or_foreign_entry_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, max_bytes=1 << 20)
    store.save(key(), bytes(range(256)) * 100)
    entry = store.path_for(key())
    entry.write_bytes(entry.read_bytes()[:-1000])  # a writer that died mid-file, or a full disk
    assert store.load(key()) is None
    assert not entry.exists()
    entry.write_bytes(b"not an entry at all")
    assert store.load(key()) is None
    assert not entry.exists()


def test_a_flipped_payload_byte_is_caught_by_the_digest(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, max_bytes=1 << 20)
    store.save(key(), b"\x00" * 4096)
    entry = store.path_for(key())
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert store.load(key()) is None
    assert not entry.exists()


def test_the_least_recently_used_entries_go_when_the_bound_is_passed(tmp_path: Path) -> None:
    payload = b"x" * 10_000
    store = PrefixStore(tmp_path, max_bytes=25_000)  # two entries and their headers fit
    first, second, third = key(tokens=(1,)), key(tokens=(2,)), key(tokens=(3,))
    store.save(first, payload)
    store.save(second, payload)
    long_ago = time.time() - 1000
    os.utime(store.path_for(first), (long_ago, long_ago))
    os.utime(store.path_for(second), (long_ago + 1, long_ago + 1))
    assert store.load(first) == bytearray(payload)  # used: now the most recent
    store.save(third, payload)
    assert store.entries() == [store.path_for(first), store.path_for(third)]
    assert store.load(second) is None


def test_a_state_larger_than_the_whole_bound_is_not_stored(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, max_bytes=1000)
    assert not store.save(key(), b"x" * 2000)
    assert store.entries() == []


def test_temporary_files_of_dead_writers_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, max_bytes=1 << 20)
    dead, live = tmp_path / ".entry.kv.1.dead.tmp", tmp_path / ".entry.kv.2.live.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    long_ago = time.time() - 7200
    os.utime(dead, (long_ago, long_ago))
    store.save(key(), b"state")
    assert not dead.exists()
    assert live.exists()


def test_an_unwritable_directory_is_a_miss_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    store = PrefixStore(blocker / "cache", max_bytes=1 << 20)
    assert not store.save(key(), b"state")
    assert store.load(key()) is None


WRITER = """
import sys
from pathlib import Path
from verity.models._prefix_store import PrefixKey, PrefixStore

store = PrefixStore(Path(sys.argv[1]), max_bytes=1 << 30)
key = PrefixKey("a" * 64, (1, 2, 3), {})
payload = bytes([int(sys.argv[2])]) * (2 << 20)
for _ in range(8):
    assert store.save(key, payload)
"""


def test_processes_writing_the_same_key_at_once_leave_a_whole_entry(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(fill)], env=environment)
        for fill in (1, 2)
    ]
    store = PrefixStore(tmp_path, max_bytes=1 << 30)
    same_key = PrefixKey("a" * 64, (1, 2, 3), {})
    whole = {bytes([1]) * (2 << 20), bytes([2]) * (2 << 20)}
    deadline = time.monotonic() + 120
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        loaded = store.load(same_key)  # a reader never sees half an entry
        if loaded is not None:
            assert bytes(loaded) in whole
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    final = store.load(same_key)
    assert final is not None and bytes(final) in whole
    assert [p.name for p in tmp_path.iterdir()] == [same_key.file_name()]  # no temporaries left


def test_a_model_file_is_hashed_once_per_version(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF weights")
    memo_dir = tmp_path / "digests"
    assert model_sha256(model, memo_dir=memo_dir) == hashlib.sha256(b"GGUF weights").hexdigest()
    (memo,) = memo_dir.iterdir()
    # the memo answers while path, size and mtime match (here it is made to say so)
    remembered = json.loads(memo.read_text())
    memo.write_text(json.dumps(remembered | {"sha256": "remembered"}))
    assert model_sha256(model, memo_dir=memo_dir) == "remembered"
    model.write_bytes(b"GGUF other weights")  # a new version: hashed again
    assert model_sha256(model, memo_dir=memo_dir) == hashlib.sha256(model.read_bytes()).hexdigest()
