"""Reading traces back through the `verity` command: logs with filters and full-text search,
show as a tree, export as JSON lines and OTLP JSON, replay, and the database in Datasette."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.agent.cli.test_cli import verity
from tests.conftest import PROJECT_ROOT, _free_port
from verity import (
    ModelCallEnded,
    ModelCallStarted,
    RunEnded,
    RunSettings,
    RunStarted,
    ToolCallEnded,
    TraceRecorder,
    TraceStore,
    run,
)
from verity.testing import ScriptedModel, answer, calls
from verity.tools.base import ToolResult
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset


async def _record(db: Path) -> None:
    """Three runs: one calls the calculator and thinks, one fails, one answers directly."""
    store = TraceStore(db)
    recorder = TraceRecorder(store)
    tools = [FunctionToolset([calculator])]
    thinking = calls(("calculator", {"expression": "1234 * 5678"})).model_copy(
        update={"reasoning": "The product is large.\nI should use the calculator."}
    )
    with anyio.fail_after(10):
        await run(
            "What is 1234 * 5678?",
            model=ScriptedModel([thinking, answer("7006652")]),
            toolsets=tools,
            hooks=recorder,
            run_id="calc",
        )
        with pytest.raises(Exception, match="script exhausted"):
            await run("Name a blue fruit", model=ScriptedModel([]), hooks=recorder, run_id="broken")
        await run(
            "Say hello",
            model=ScriptedModel([answer("Hello there")]),
            hooks=recorder,
            run_id="hello",
            settings=RunSettings(max_steps=2),
        )
    store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "traces.db"
    anyio.run(_record, path)
    return path


def _ids(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()[1:]]


def test_logs_has_a_header_dates_and_one_line_per_run_newest_first(db: Path) -> None:
    done = verity("logs", trace_db=db)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.startswith("RUN ") and "STARTED (UTC)" in header
    assert _ids(done.stdout) == ["hello", "broken", "calc"]
    assert re.search(
        r"^calc\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+completed\s+not checked\s+2\s+0/0\s+"
        r"What is 1234 \* 5678\? -> 7006652$",
        rows[2],
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--status", "failed"], ["broken"]),
        (["--tool", "calculator"], ["calc"]),
        (["--model", "SCRIPT"], ["hello", "broken", "calc"]),
        (["--verified", "yes"], []),
        (["--verified", "no"], []),  # a verifier ran and did not confirm: none here
        (["--verified", "unchecked"], ["hello", "broken", "calc"]),
        (["--since", "1h"], ["hello", "broken", "calc"]),
        (["--since", "2999-01-01"], []),
        (["-q", "calculator"], ["calc"]),  # in the reasoning only
        (["-q", "7006652"], ["calc"]),  # the tool's result and the answer
        (["-q", "hello there"], ["hello"]),
        (["-q", "script exhausted"], []),  # errors are not searched
        (["-q", '1234 * "5678'], ["calc"]),  # FTS syntax in the words is taken literally
        (["-n", "1"], ["hello"]),
    ],
)
def test_logs_filters_and_searches(db: Path, options: list[str], expected: list[str]) -> None:
    done = verity("logs", *options, trace_db=db)
    assert done.returncode == 0, done.stderr
    assert _ids(done.stdout) == expected


def test_logs_json_is_the_run_summary(db: Path) -> None:
    done = verity("logs", "--tool", "calculator", "--json", trace_db=db)
    [row] = json.loads(done.stdout)
    assert {k: row[k] for k in ("id", "status", "steps", "tool_calls", "tool_errors")} == {
        "id": "calc",
        "status": "completed",
        "steps": 2,
        "tool_calls": 1,
        "tool_errors": 0,
    }


def test_logs_with_a_bad_since_is_one_line(db: Path) -> None:
    done = verity("logs", "--since", "yesterday", trace_db=db)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "verity: error: --since 'yesterday' is neither a date (2026-11-28, 2026-11-28T17:30) "
        "nor an age (30m, 2h, 7d).\n"
    )


def test_show_prints_the_run_as_a_tree_with_reasoning_folded_unless_asked(db: Path) -> None:
    folded = verity("show", "calc", trace_db=db)
    assert folded.returncode == 0, folded.stderr
    lines = folded.stdout.splitlines()
    assert lines[0].startswith("run calc  completed  model scripted  20")
    assert [re.sub(r"\d+\.\d+ s", "T", line) for line in lines[1:]] == [
        "task: What is 1234 * 5678?",
        "├─ step 1  tool_calls",
        "│  ├─ model  0 in, 0 out  T",
        "│  │  thought: (50 characters; --reasoning shows them)",
        '│  └─ calculator({"expression": "1234 * 5678"})  T',
        "│     -> 7006652",
        "└─ step 2  accepted",
        "   └─ model  0 in, 0 out  T",
        "      says: 7006652",
        "answer: 7006652",
        "verification: not checked (no verifier ran)",
        "tokens: 0 in, 0 out over 2 model calls",
    ]
    unfolded = verity("show", "calc", "--reasoning", trace_db=db).stdout.splitlines()
    assert unfolded[4:6] == [
        "│  │  thought: The product is large.",
        "│  │           I should use the calculator.",
    ]


def test_show_json_has_everything_recorded(db: Path) -> None:
    record = json.loads(verity("show", "calc", "--json", trace_db=db).stdout)
    assert record["tool_calls"][0]["arguments"] == {"expression": "1234 * 5678"}
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "tool"]
    assert record["messages"][0]["content"] == record["system_prompt"]
    [offered] = record["tools"].values()
    assert [t["name"] for t in offered] == ["calculator"]
    assert record["config"]["run"]["max_steps"] == 8


def test_export_jsonl_writes_one_run_per_line(db: Path) -> None:
    done = verity("export", "--all", "--format", "jsonl", trace_db=db)
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == [
        "calc",
        "broken",
        "hello",
    ]
    missing = verity("export", trace_db=db)
    assert missing.stderr == "verity: error: Name one run to export, or pass --all.\n"


HEX32, HEX16, NANOS = (
    re.compile(r"^[0-9a-f]{32}$"),
    re.compile(r"^[0-9a-f]{16}$"),
    re.compile(r"^[1-9][0-9]{18}$"),
)


def check_otlp_shape(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The OTLP JSON trace shape (ExportTraceServiceRequest): ids in hex, times as strings."""
    assert set(document) == {"resourceSpans"}
    spans = []
    for resource_spans in document["resourceSpans"]:
        assert {"key": "service.name", "value": {"stringValue": "verity"}} in resource_spans[
            "resource"
        ]["attributes"]
        for scope_spans in resource_spans["scopeSpans"]:
            assert isinstance(scope_spans["scope"]["name"], str)
            spans.extend(scope_spans["spans"])
    for span in spans:
        assert HEX32.match(span["traceId"]) and HEX16.match(span["spanId"])
        assert NANOS.match(span["startTimeUnixNano"]) and NANOS.match(span["endTimeUnixNano"])
        assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
        assert span["kind"] in (1, 3)
        for attribute in span["attributes"]:
            [(kind, value)] = attribute["value"].items()
            assert kind in ("stringValue", "intValue", "doubleValue", "boolValue", "arrayValue")
            if kind == "intValue":
                assert isinstance(value, str) and int(value) >= 0
    ids = {span["spanId"] for span in spans}
    assert len(ids) == len(spans)
    assert all(span.get("parentSpanId", next(iter(ids))) in ids for span in spans)
    return spans


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


@pytest.mark.slow
def test_the_otlp_export_of_a_real_run_has_genai_spans(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    done = verity("run", "What is 1234 * 5678?", "--json", "--quiet", trace_db=db)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    exported = verity("export", run_id, "--format", "otlp-json", trace_db=db)
    assert exported.returncode == 0, exported.stderr
    spans = check_otlp_shape(json.loads(exported.stdout))
    root, *children = spans
    assert root["name"] == "invoke_agent verity" and "parentSpanId" not in root
    assert {c["parentSpanId"] for c in children} == {root["spanId"]}
    chats = [c for c in children if c["name"].startswith("chat ")]
    tools = [c for c in children if c["name"] == "execute_tool calculator"]
    assert len(chats) >= 2 and len(tools) >= 1
    chat = _attributes(chats[0])
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.provider.name"] == "llama.cpp"
    assert int(chat["gen_ai.usage.input_tokens"]) > 0
    assert int(chat["gen_ai.usage.output_tokens"]) > 0
    assert chat["gen_ai.request.temperature"] == 0.0
    tool = _attributes(tools[0])
    assert tool["gen_ai.operation.name"] == "execute_tool"
    assert tool["gen_ai.tool.call.result"] == "7006652"


def test_replay_reports_the_first_step_whose_tool_result_differs(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    store = TraceStore(db)
    recorder = TraceRecorder(store)
    step_two = calls(("calculator", {"expression": "2 + 2"}))

    async def record() -> None:
        # as if the tool had changed: it once said 5 for 2 + 2
        tools = [FunctionToolset([calculator])]
        await run(
            "2 + 2, twice",
            model=ScriptedModel([step_two, answer("4")]),
            toolsets=tools,
            hooks=recorder,
            run_id="same",
        )
        await recorder.on_run_start(RunStarted(run_id="changed", task="2 + 2", model="scripted"))
        for step, result in ((1, "2"), (2, "5")):
            await recorder.on_model_start(
                ModelCallStarted(run_id="changed", step=step, messages=[])
            )
            response = calls(("calculator", {"expression": f"{step} + {step}"}))
            await recorder.on_model_end(
                ModelCallEnded(run_id="changed", step=step, response=response)
            )
            await recorder.on_tool_end(
                ToolCallEnded(
                    run_id="changed",
                    step=step,
                    call=response.tool_calls[0],
                    result=ToolResult(content=result),
                    duration_s=0.001,
                )
            )
        await recorder.on_model_start(ModelCallStarted(run_id="changed", step=3, messages=[]))
        await recorder.on_model_end(ModelCallEnded(run_id="changed", step=3, response=answer("4")))
        await recorder.on_run_end(RunEnded(run_id="changed", status="completed", answer="4"))

    anyio.run(record)
    store.close()
    same = verity("replay", "same", trace_db=db)
    assert (same.returncode, same.stdout) == (
        0,
        "run same: all 1 tool results as recorded (replay ended: answer)\n",
    )
    changed = verity("replay", "changed", trace_db=db)
    assert changed.returncode == 1, changed.stderr
    assert changed.stdout.splitlines() == [
        'run changed: step 2 differs, after 1 matching tool results: calculator({"expression": '
        '"2 + 2"})',
        "  recorded: 5",
        "  replayed: 4",
    ]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_datasette_serves_the_database_with_its_descriptions_and_canned_queries(
    db: Path, tmp_path: Path
) -> None:
    metadata = tmp_path / "metadata.json"
    done = verity("export", "--datasette-metadata", trace_db=db)
    metadata.write_text(done.stdout)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datasette",
            "serve",
            str(db),
            "--metadata",
            str(metadata),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/-/versions.json")
                break
            except OSError:
                assert time.monotonic() < deadline, "datasette did not start"
                time.sleep(0.2)
        failed = _get(f"{base}/traces/failed_runs.json?_shape=array")
        assert [(r["id"], r["status"]) for r in failed] == [("broken", "failed")]
        shown = _get(f"{base}/traces/run_messages.json?_shape=array&run_id=calc")
        assert [r["role"] for r in shown] == ["system", "user", "assistant", "tool"]
        assert shown[0]["content"].startswith("You are")
        summary = _get(f"{base}/traces/run_summary.json?_shape=array&id=calc")
        assert (summary[0]["tool_calls"], summary[0]["tool_errors"]) == (1, 0)
        described = _get(f"{base}/-/metadata.json")
        assert (
            "What the model was shown"
            in (described["databases"]["traces"]["tables"]["messages"]["description"])
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
