"""What leaves the trace database through the `verity` command: no credentials from a base URL,
and `export --all` in bounded memory however many runs there are."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.agent.cli.test_cli import verity
from tests.conftest import PROJECT_ROOT
from verity import TraceStore
from verity.trace.store import Writer, now

SECRET = "sk-test-5ec2e7-do-not-store"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused


def test_an_api_key_in_the_base_urls_query_is_never_stored_in_the_trace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    url = f"http://127.0.0.1:{closed_port()}/v1?api_key={SECRET}&x=1"
    done = verity(
        "run",
        "What is 2+3?",
        "--base-url",
        url,
        "--api-model",
        "m",
        trace_db=db,
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    [run] = TraceStore(db).read("select status, config, error from runs")
    assert run["status"] == "failed"
    assert json.loads(run["config"])["model"]["base_url"] == (url.replace(SECRET, "REDACTED"))
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    assert SECRET.encode() not in stored


def peak_rss_kib(*args: str, out: Path) -> int:
    """The peak resident memory of `verity ARGS` (stdout to `out`), measured by a parent."""
    measure = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'wb'), check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, str(out), sys.executable, "-m", "verity", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return int(done.stdout)


def test_export_all_holds_one_run_in_memory_not_the_whole_database(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = TraceStore(db)
    runs, result_size = 300, 300_000  # 90 MB of tool results
    rows = [(f"run{i:04d}", "task", "completed", now()) for i in range(runs)]
    calls = [
        (f"run{i:04d}", 1, "c1", "dump", "{}", f"{i:06d}" * (result_size // 6), 0, 0.1, now())
        for i in range(runs)
    ]

    def fill(w: Writer) -> None:
        w.executemany("insert into runs (id, task, status, started_at) values (?, ?, ?, ?)", rows)
        w.executemany(
            "insert into tool_calls (run_id, step, tool_call_id, tool_name, arguments, "
            "result, is_error, duration_s, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, "
            "?)",
            calls,
        )

    store.transaction(fill)
    store.close()
    one = peak_rss_kib("export", "run0000", "--trace-db", str(db), out=tmp_path / "one.jsonl")
    every = peak_rss_kib("export", "--all", "--trace-db", str(db), out=tmp_path / "all.jsonl")
    otlp = peak_rss_kib(
        "export", "--all", "--format", "otlp-json", "--trace-db", str(db), out=tmp_path / "all.json"
    )
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [row[0] for row in rows]
    spans = json.loads((tmp_path / "all.json").read_text())["resourceSpans"][0]["scopeSpans"][0]
    assert len(spans["spans"]) == 2 * runs
    # one run is ~0.3 MB: all 300 at once would be 90 MB of results, twice over as JSON
    assert every - one < 40_000, (one, every)
    assert otlp - one < 40_000, (one, otlp)
