"""Live OTLP export: each run's spans, as `verity export --format otlp-json` builds them, sent
when the run ends through the OpenTelemetry SDK's OTLP/HTTP exporter (`OTEL_EXPORTER_OTLP_*`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from verity.hooks import RunEnded, RunHooks
from verity.trace.export import otlp_json
from verity.trace.query import full_run
from verity.trace.store import TraceStore

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["OTLPExport", "live_export", "readable_spans"]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_log = logging.getLogger("verity.otlp")


def live_export(store: TraceStore, *, version: str | None = None) -> OTLPExport | None:
    """An `OTLPExport` to the endpoint the OpenTelemetry variables name; None when none is set."""
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:  # the variable may be set for other programs: warn, and run anyway
        _log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OTLP exporter is not "
            "installed: pip install 'verity-agent[otlp]' to export runs live"
        )
        return None
    return OTLPExport(store, OTLPSpanExporter(), version=version)


class OTLPExport(RunHooks):
    """Sends each run that ends to an OTLP exporter, read back from the trace (so it is placed
    after the `TraceRecorder` in the hooks). A failed export is a warning, never a failed run."""

    def __init__(
        self, store: TraceStore, exporter: SpanExporter, *, version: str | None = None
    ) -> None:
        self.store = store
        self.exporter = exporter
        self.version = version

    async def on_run_end(self, event: RunEnded) -> None:
        """Export the run's spans (in a worker thread: the exporter blocks and retries)."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        record = full_run(self.store, event.run_id)
        if record is None:
            return
        spans = readable_spans(otlp_json([record], version=self.version))
        result = await anyio.to_thread.run_sync(self.exporter.export, spans)
        if result is not SpanExportResult.SUCCESS:
            _log.warning("the spans of run %s could not be exported over OTLP", event.run_id)

    async def aclose(self) -> None:
        """Shut the exporter down."""
        await anyio.to_thread.run_sync(self.exporter.shutdown)


def readable_spans(request: Mapping[str, Any]) -> list[ReadableSpan]:
    """The spans of an OTLP JSON `ExportTraceServiceRequest` as the SDK's spans, ids kept."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

    spans = []
    for resource_spans in request["resourceSpans"]:
        resource = Resource(_decoded(resource_spans["resource"]["attributes"]))
        for scope_spans in resource_spans["scopeSpans"]:
            scope = InstrumentationScope(
                scope_spans["scope"]["name"], scope_spans["scope"].get("version") or None
            )
            for span in scope_spans["spans"]:
                trace = int(span["traceId"], 16)
                parent = span.get("parentSpanId")
                status = span.get("status")
                spans.append(
                    ReadableSpan(
                        span["name"],
                        context=SpanContext(trace, int(span["spanId"], 16), is_remote=False),
                        parent=SpanContext(trace, int(parent, 16), is_remote=False)
                        if parent
                        else None,
                        resource=resource,
                        attributes=_decoded(span["attributes"]),
                        kind=SpanKind(span["kind"] - 1),  # OTLP counts from UNSPECIFIED = 0
                        status=Status(StatusCode.ERROR, status["message"]) if status else Status(),
                        start_time=int(span["startTimeUnixNano"]),
                        end_time=int(span["endTimeUnixNano"]),
                        instrumentation_scope=scope,
                    )
                )
    return spans


def _decoded(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {pair["key"]: _value(pair["value"]) for pair in attributes}


def _value(value: Mapping[str, Any]) -> Any:
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"]["values"]]
    if "intValue" in value:
        return int(value["intValue"])
    return next(iter(value.values()))
