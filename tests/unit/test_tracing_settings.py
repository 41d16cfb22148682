"""Tracing configuration (:mod:`streams.telemetry.tracing`): off by default and then free of
OpenTelemetry, on from ``[telemetry]`` or the ``OTEL_*`` variables, a clear exit 2 when on
without the ``otel`` extra; the source's ``id`` field; the batch span's bounded links."""

from __future__ import annotations

import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from streams.plan.errors import PipelineError
from streams.plan.pipeline import TelemetrySpec, parse_pipeline
from streams.telemetry.tracing import (
    NO_TRACING,
    TracingSettings,
    current_tracer,
    open_tracer,
    tracing_settings,
)
from tests.tool_needs import require_module

PIPELINE = """
[app]
id = "traced"

[[source]]
name = "clicks"
topics = ["clicks"]
key = "user"
id = "event_id"

[[table]]
name = "per_user"
source = "clicks"
window = { type = "tumbling", size = "1m" }
aggregate = { n = "count()" }
"""


def test_tracing_is_off_unless_asked_for() -> None:
    assert tracing_settings(TelemetrySpec(), {}, "app") is None
    assert tracing_settings(TelemetrySpec(), {"OTEL_TRACES_EXPORTER": "none"}, "app") is None
    assert tracing_settings(TelemetrySpec(traces="none"), {"OTEL_TRACES_EXPORTER": "otlp"}, "app") is None


def test_the_otel_variables_turn_it_on_and_the_file_wins_over_them() -> None:
    on = tracing_settings(TelemetrySpec(), {"OTEL_TRACES_EXPORTER": " OTLP "}, "app")
    assert on == TracingSettings(endpoint=None, service_name="app")
    named = tracing_settings(
        TelemetrySpec(), {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "svc"}, "app"
    )
    assert named == TracingSettings(endpoint=None, service_name="svc")
    spec = TelemetrySpec(traces="otlp", endpoint="http://collector:4318/", service_name="mine")
    assert tracing_settings(spec, {"OTEL_SERVICE_NAME": "svc"}, "app") == TracingSettings(
        endpoint="http://collector:4318/v1/traces", service_name="mine"
    )
    assert tracing_settings(spec, {"OTEL_SDK_DISABLED": "true"}, "app") is None


def test_an_exporter_it_cannot_use_is_a_configuration_error() -> None:
    with pytest.raises(PipelineError, match="OTEL_TRACES_EXPORTER: 'zipkin' is not supported"):
        tracing_settings(TelemetrySpec(), {"OTEL_TRACES_EXPORTER": "zipkin"}, "app")


def test_the_pipeline_file_reads_telemetry_and_the_source_id_field() -> None:
    import tomllib

    raw = tomllib.loads(PIPELINE + '\n[telemetry]\ntraces = "otlp"\nendpoint = "http://c:4318"\n')
    pipeline = parse_pipeline(raw)
    assert pipeline.telemetry == TelemetrySpec(traces="otlp", endpoint="http://c:4318")
    assert pipeline.sources[0].id_field == "event_id"
    assert parse_pipeline(tomllib.loads(PIPELINE)).telemetry == TelemetrySpec()
    with pytest.raises(PipelineError, match=r"\[telemetry\]: `traces` = 'jaeger' is not supported"):
        parse_pipeline(tomllib.loads(PIPELINE + '\n[telemetry]\ntraces = "jaeger"\n'))
    with pytest.raises(PipelineError, match="unknown setting 'sampler'"):
        parse_pipeline(tomllib.loads(PIPELINE + '\n[telemetry]\nsampler = "always"\n'))
    with pytest.raises(PipelineError, match="`id` must be a non-empty string"):
        parse_pipeline(tomllib.loads(PIPELINE.replace('id = "event_id"', "id = 3")))


def test_tracing_off_is_the_no_op_tracer_and_imports_no_opentelemetry() -> None:
    assert open_tracer(None) is NO_TRACING
    assert current_tracer() is NO_TRACING
    script = (
        "import sys, agents.application, agents.worker, streams.api.http_api\n"
        "from streams.telemetry.tracing import open_tracer\n"
        "open_tracer(None)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tracing_on_without_the_extra_exits_2_with_one_line(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(PIPELINE)
    # the interpreter as it is without the extra: importing opentelemetry fails
    script = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "from agents.cli import main\n"
        f"sys.exit(main(['worker', '-c', {str(pipeline)!r}, '--data-dir', {str(tmp_path)!r}]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "OTEL_TRACES_EXPORTER": "otlp", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("continust:")]
    assert len(lines) == 1
    assert "tracing is on but OpenTelemetry is not installed" in lines[0]
    assert "continust[otel]" in lines[0]


Record = namedtuple("Record", "offset headers")


def test_a_batch_span_links_to_the_valid_traceparents_of_its_first_records_only() -> None:
    require_module("opentelemetry", "the otel extra (`make test` installs it)")
    from streams.telemetry.otel_tracing import record_links

    def parent(n: int) -> bytes:
        return f"00-{n + 1:032x}-{n + 1:016x}-01".encode()

    records = [
        Record(0, None),
        Record(1, [("traceparent", b"00-broken")]),
        *(Record(n, [("x", b"y"), ("traceparent", parent(n))]) for n in range(2, 60)),
    ]
    links = record_links(records, limit=5)
    assert [link.context.trace_id for link in links] == [3, 4, 5, 6, 7]
    assert all(link.context.is_remote and link.context.trace_flags.sampled for link in links)
    assert len(record_links(records)) == 32
