"""Live OTLP export: a run's spans reach a real OTLP/HTTP receiver on 127.0.0.1 when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from tests.conftest import PROJECT_ROOT
from tests.fixtures.otlp_receiver import otlp_receiver
from verity import TraceRecorder, TraceStore, run
from verity.hooks import CompositeHooks
from verity.testing import ScriptedModel, answer, calls
from verity.tools.builtin.calculator import calculator
from verity.tools.toolset import FunctionToolset
from verity.trace.export import span_id, trace_id
from verity.trace.otlp import OTLPExport, live_export


async def _run(store: TraceStore, export: OTLPExport) -> str:
    model = ScriptedModel([calls(("calculator", {"expression": "6 * 7"})), answer("42")])
    with anyio.fail_after(120):
        result = await run(
            "What is 6 * 7?",
            model=model,
            toolsets=[FunctionToolset([calculator])],
            hooks=CompositeHooks([TraceRecorder(store), export]),
        )
        await export.aclose()
    model.assert_complete()
    return result.run_id


async def test_a_runs_spans_reach_the_receiver_with_the_ids_verity_export_gives(
    tmp_path: Path,
) -> None:
    store = TraceStore(tmp_path / "t.db")
    with otlp_receiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=10)
        run_id = await _run(store, OTLPExport(store, exporter, version="test"))
    ((path, content_type, request),) = receiver.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    (resource_spans,) = request.resource_spans
    assert [(a.key, a.value.string_value) for a in resource_spans.resource.attributes] == [
        ("service.name", "verity")
    ]
    listed = resource_spans.scope_spans[0].spans
    assert sorted(span.name for span in listed) == [
        "chat scripted",
        "chat scripted",
        "execute_tool calculator",
        "invoke_agent verity",
    ]
    spans = {span.name: span for span in listed}
    root = spans["invoke_agent verity"]
    assert root.trace_id.hex() == trace_id(run_id)
    assert root.span_id.hex() == span_id(run_id, "run")
    assert all(s.parent_span_id == root.span_id for s in listed if s is not root)
    tool = {a.key: a.value for a in spans["execute_tool calculator"].attributes}
    assert tool["gen_ai.tool.call.result"].string_value == "42"
    assert spans["chat scripted"].kind == 3  # CLIENT, as in OTLP
    assert root.end_time_unix_nano >= root.start_time_unix_nano > 0


async def test_the_endpoint_comes_from_otel_exporter_otlp_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TraceStore(tmp_path / "t.db")
    assert live_export(store) is None  # no variable: no export
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        export = live_export(store)
        assert export is not None
        run_id = await _run(store, export)
    ((path, _, request),) = receiver.received
    assert path == "/v1/traces"  # the SDK adds the signal's path to the base endpoint
    assert request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex() == trace_id(run_id)


@pytest.mark.slow
def test_verity_run_exports_its_run_live_to_the_endpoint_in_the_environment(
    tmp_path: Path,
) -> None:
    with otlp_receiver() as receiver:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "verity",
                "run",
                "--json",
                "--quiet",
                "--max-steps",
                "1",
                "--trace-db",
                str(tmp_path / "t.db"),
                "Say hello.",
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
            env={
                **os.environ,
                "PYTHONPATH": str(PROJECT_ROOT),
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            },
        )
    assert "Traceback" not in done.stderr
    store = TraceStore(tmp_path / "t.db")
    (run_id,) = [row["id"] for row in store.read("select id from runs")]
    ((path, _, request),) = receiver.received
    root = [s for s in request.resource_spans[0].scope_spans[0].spans if s.name.startswith("inv")]
    assert path == "/v1/traces"
    assert [s.trace_id.hex() for s in root] == [trace_id(run_id)]
