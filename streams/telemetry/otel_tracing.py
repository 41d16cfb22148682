"""The OpenTelemetry tracer (the ``otel`` extra): spans exported over OTLP/HTTP (protobuf) by
the SDK's batch span processor, which the ``OTEL_BSP_*`` variables tune.

Spans and their attributes:

* ``continust.batch`` (consumer): ``continust.stage`` (the source's name, or the names of
  the tables fed by a keyed stream, comma-separated), ``messaging.destination.name`` (the
  topic), ``messaging.destination.partition.id``, ``messaging.batch.message_count``; a link
  to the trace context of each of its first :data:`MAX_LINKS` records that
  carry a valid ``traceparent``;
* ``continust.commit`` (internal): ``continust.committed``, whether offsets were committed;
* ``<method> <route>`` (server, e.g. ``GET /tables/{table}``): ``http.route`` (the path
  template), ``http.request.method``, ``http.response.status_code``; a child of the
  request's own ``traceparent`` when it has a valid one.

Importing this module imports OpenTelemetry: only :func:`streams.telemetry.tracing.open_tracer` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from streams.plan.causation import TRACEPARENT, parse_traceparent

#: a batch span links to the trace contexts of at most this many of its records
MAX_LINKS = 32


def span_context(traceparent: bytes | str | None) -> SpanContext | None:
    """The remote span context a valid ``traceparent`` names, else ``None``."""
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    return SpanContext(
        trace_id=int(parsed.trace_id, 16),
        span_id=int(parsed.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(parsed.flags & 1),
    )


def record_links(records: Sequence[Any], limit: int = MAX_LINKS) -> list[Link]:
    """Links to the trace contexts of the first ``limit`` records with a valid traceparent."""
    links: list[Link] = []
    for record in records:
        for name, value in record.headers or ():
            if name == TRACEPARENT:
                context = span_context(value)
                if context is not None:
                    links.append(Link(context))
                break
        if len(links) >= limit:
            break
    return links


class OpenTelemetrySpan:
    """One open span, ended when the ``with`` block ends."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._status: int | None = None

    def set_attribute(self, name: str, value: str | int | bool) -> None:
        self._span.set_attribute(name, value)

    def set_status_code(self, status: int) -> None:
        self._status = status
        self._span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self._span.set_status(trace.StatusCode.ERROR)

    def __enter__(self) -> OpenTelemetrySpan:
        return self

    def __exit__(self, *exc: object) -> None:
        error = exc[1] if len(exc) > 1 else None
        # an HTTP answer raised as an exception (a 404) is not an error of the span: its status
        # code says what it was
        if isinstance(error, BaseException) and self._status is None:
            self._span.record_exception(error)
            self._span.set_status(trace.StatusCode.ERROR, repr(error))
        self._span.end()


class OpenTelemetryTracer:
    """The :class:`~streams.telemetry.tracing.Tracer` that records spans with the OpenTelemetry SDK, as
    ``service_name``, exported to ``endpoint`` (a full URL; ``None``: where the
    ``OTEL_EXPORTER_OTLP_*`` variables say)."""

    def __init__(self, endpoint: str | None, service_name: str) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self.provider.get_tracer("continust")

    def batch(self, stage: str, topic: str, partition: int, records: Sequence[Any]) -> OpenTelemetrySpan:
        span = self._tracer.start_span(
            "continust.batch",
            kind=SpanKind.CONSUMER,
            attributes={
                "continust.stage": stage,
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition),
                "messaging.batch.message_count": len(records),
            },
            links=record_links(records),
        )
        return OpenTelemetrySpan(span)

    def commit(self) -> OpenTelemetrySpan:
        return OpenTelemetrySpan(self._tracer.start_span("continust.commit"))

    def http_request(self, method: str, route: str, traceparent: str | None = None) -> OpenTelemetrySpan:
        parent = span_context(traceparent)
        context = None if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
        span = self._tracer.start_span(
            f"{method} {route}",
            context=context,
            kind=SpanKind.SERVER,
            attributes={"http.route": route, "http.request.method": method},
        )
        return OpenTelemetrySpan(span)

    def shutdown(self) -> None:
        self.provider.shutdown()
