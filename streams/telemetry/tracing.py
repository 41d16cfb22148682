"""Tracing: spans per batch, per commit and per HTTP request, off unless configured.

The runtime calls a :class:`Tracer` (:func:`current_tracer`); the default is :data:`NO_TRACING`,
whose spans are one shared object that does nothing, so tracing off costs a method call and
imports nothing of OpenTelemetry. :func:`open_tracer` turns it on when the pipeline's
``[telemetry]`` section or the standard ``OTEL_*`` variables ask for it
(:func:`tracing_settings`): it loads :mod:`streams.telemetry.otel_tracing`, which needs the ``otel`` extra.

The spans (names and attributes are the contract of :mod:`streams.telemetry.otel_tracing`):

* ``continust.batch``: one per batch of records a stage processed (one fetch of one
  partition), linked to the trace contexts (``traceparent`` headers) of its first records;
* ``continust.commit``: one per commit (under ``exactly_once``, the transactions' commit),
  with whether it committed offsets;
* ``<method> <route>``: one per HTTP request (route template, method and status).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streams.plan.errors import PipelineError
from streams.plan.pipeline import EXPORTERS, TelemetrySpec


class Span(Protocol):
    def set_attribute(self, name: str, value: str | int | bool) -> None:
        """An attribute of the span."""
        ...

    def set_status_code(self, status: int) -> None:
        """An HTTP span's response status (the other spans ignore it)."""
        ...

    def __enter__(self) -> Span: ...

    def __exit__(self, *exc: object) -> None: ...


class Tracer(Protocol):
    def batch(self, stage: str, topic: str, partition: int, records: Sequence[Any]) -> Span:
        """The span of one batch of ``records`` (aiokafka records) of ``topic``'s ``partition``
        processed by ``stage`` (a source's or tables' names)."""
        ...

    def commit(self) -> Span:
        """The span of one commit."""
        ...

    def http_request(self, method: str, route: str, traceparent: str | None = None) -> Span:
        """The span of one HTTP request to ``route`` (the path template), a child of the
        request's ``traceparent`` header when it has a valid one."""
        ...

    def shutdown(self) -> None:
        """Send the spans not sent yet; called once, as the worker exits."""
        ...


class _NoSpan:
    """A span that does nothing (one shared instance)."""

    def set_attribute(self, name: str, value: str | int | bool) -> None:
        pass

    def set_status_code(self, status: int) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


_NO_SPAN = _NoSpan()


class NoTracing:
    """Tracing off: every span is the same object that does nothing."""

    def batch(self, stage: str, topic: str, partition: int, records: Sequence[Any]) -> Span:
        return _NO_SPAN

    def commit(self) -> Span:
        return _NO_SPAN

    def http_request(self, method: str, route: str, traceparent: str | None = None) -> Span:
        return _NO_SPAN

    def shutdown(self) -> None:
        pass


NO_TRACING = NoTracing()


@dataclass(frozen=True)
class TracingSettings:
    """Tracing on, exporting over OTLP/HTTP: to ``endpoint`` (a full URL), or where the
    ``OTEL_EXPORTER_OTLP_*`` variables say when ``None``; as ``service_name``."""

    endpoint: str | None
    service_name: str


def tracing_settings(
    spec: TelemetrySpec, environ: Mapping[str, str], app_id: str, path: str = "<pipeline>"
) -> TracingSettings | None:
    """Whether tracing is on, and how (``None``: off, the default). The file's ``traces``
    wins over ``OTEL_TRACES_EXPORTER``; ``OTEL_SDK_DISABLED=true`` turns it off whatever they
    say. An exporter other than ``otlp`` or ``none`` is a configuration error."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if spec.traces is not None:
        exporter, where = spec.traces, "[telemetry] traces"
    else:
        where = "OTEL_TRACES_EXPORTER"
        exporter = environ.get(where, "").strip().lower() or "none"
    if exporter not in EXPORTERS:
        raise PipelineError(path, where, f"{exporter!r} is not supported; allowed: {', '.join(EXPORTERS)}")
    if exporter == "none":
        return None
    endpoint = None if spec.endpoint is None else spec.endpoint.rstrip("/") + "/v1/traces"
    service = spec.service_name or environ.get("OTEL_SERVICE_NAME") or app_id
    return TracingSettings(endpoint=endpoint, service_name=service)


def open_tracer(settings: TracingSettings | None, path: str = "<pipeline>") -> Tracer:
    """The tracer ``settings`` ask for, made :func:`current_tracer`: :data:`NO_TRACING` for
    ``None``. Tracing on without the ``otel`` extra installed is a configuration error."""
    tracer: Tracer = NO_TRACING
    if settings is not None:
        try:
            from streams.telemetry.otel_tracing import OpenTelemetryTracer
        except ImportError as exc:
            raise PipelineError(
                path,
                "[telemetry]",
                f"tracing is on but OpenTelemetry is not installed ({exc.name}): install the "
                "`otel` extra (pip install 'continust[otel]') or turn tracing off",
            ) from None
        tracer = OpenTelemetryTracer(settings.endpoint, settings.service_name)
    _CURRENT[0] = tracer
    return tracer


_CURRENT: list[Tracer] = [NO_TRACING]


def current_tracer() -> Tracer:
    """The worker's tracer (:data:`NO_TRACING` until :func:`open_tracer` set another)."""
    return _CURRENT[0]
