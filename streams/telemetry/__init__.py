"""What a worker tells its operators: Prometheus metrics, structured (logfmt or JSON) logs, and
tracing (off, or OpenTelemetry with the ``otel`` extra)."""
