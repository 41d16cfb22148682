"""Prometheus metrics of a worker, served at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

RECORDS_FETCHED = Counter(
    "continust_records_fetched_total",
    "Records the consumer handed to the worker's streams, by topic and partition.",
    ["topic", "partition"],
    registry=REGISTRY,
)
EVENTS_IN = Counter("continust_events_total", "Input records read, by source.", ["source"], registry=REGISTRY)
EVENTS_INVALID = Counter(
    "continust_invalid_events_total",
    "Input records sent to the dead-letter topic, by source, table and reason.",
    ["source", "table", "reason"],
    registry=REGISTRY,
)
EVENTS_LATE = Counter(
    "continust_late_events_total",
    "Events that arrived after every window they belong to had closed, by table.",
    ["table"],
    registry=REGISTRY,
)
OUTPUTS = Counter(
    "continust_output_records_total",
    "Records written to output topics, by table.",
    ["table"],
    registry=REGISTRY,
)
STREAM_TIME = Gauge(
    "continust_stream_time_ms",
    "Stream time (the clock that closes windows) of each partition of a table.",
    ["table", "partition"],
    registry=REGISTRY,
)
STREAM_TIME_LAG = Gauge(
    "continust_stream_time_lag_seconds",
    "Wall-clock time minus the stream time of each partition of a table, at the last commit.",
    ["table", "partition"],
    registry=REGISTRY,
)
INPUT_PROGRESS = Gauge(
    "continust_input_progress_ms",
    "Largest event time a table partition knows of each input partition feeding it.",
    ["table", "partition", "input"],
    registry=REGISTRY,
)
INPUT_HOLDING = Gauge(
    "continust_input_holding",
    "1 when an input partition holds a table partition's stream time back (not idle, at or "
    "behind it, or not reported yet), else 0.",
    ["table", "partition", "input"],
    registry=REGISTRY,
)
INPUT_IDLE = Gauge(
    "continust_input_idle",
    "1 when an input partition is idle (caught up and quiet for idle_after), as a table "
    "partition knows it, else 0.",
    ["table", "partition", "input"],
    registry=REGISTRY,
)
HTTP_ERRORS = Counter(
    "continust_http_errors_total",
    "HTTP answers with a 4xx or 5xx status, by status.",
    ["status"],
    registry=REGISTRY,
)
BROKER_REACHABLE = Gauge(
    "continust_broker_reachable",
    "1 while the worker's last probe of the Kafka cluster (a metadata request) succeeded, else 0.",
    registry=REGISTRY,
)
BROKER_UNREACHABLE_SECONDS = Gauge(
    "continust_broker_unreachable_seconds",
    "Seconds since the worker's probes of the Kafka cluster began failing (0 while reachable); "
    "the worker exits non-zero when this reaches broker_timeout.",
    registry=REGISTRY,
)
BACKPRESSURE_PAUSES = Counter(
    "continust_backpressure_pauses_total",
    "Times the worker stopped fetching and processing until a commit drained a memory limit, "
    "by limit (state_cache).",
    ["limit"],
    registry=REGISTRY,
)
BACKPRESSURE_SECONDS = Counter(
    "continust_backpressure_seconds_total",
    "Seconds the worker spent paused for a memory limit, by limit.",
    ["limit"],
    registry=REGISTRY,
)
CHANGELOG_RECORDS_RESTORED = Counter(
    "continust_changelog_records_restored_total",
    "Changelog records a worker read to restore table state it did not have on disk "
    "(after a restart, only those committed since its last applied commit), by table.",
    ["table"],
    registry=REGISTRY,
)
STATE_CHANGELOG_OFFSET = Gauge(
    "continust_state_changelog_offset",
    "The changelog offset of the last committed state a table partition's RocksDB holds "
    "(a restart restores only the changelog records after it), by table and partition.",
    ["table", "partition"],
    registry=REGISTRY,
)
STATE_CACHE_BYTES = Gauge(
    "continust_state_cache_bytes",
    "Estimated bytes of table state changed or read since the last commit (the write-back cache), by table.",
    ["table"],
    registry=REGISTRY,
)
INGEST_RECORDS = Counter(
    "continust_ingest_records_total",
    "Records the HTTP ingest route wrote to a source's topic, by source.",
    ["source"],
    registry=REGISTRY,
)
INGEST_REJECTED = Counter(
    "continust_ingest_rejected_total",
    "Records the HTTP ingest route did not write, by source and reason: the envelope's reason "
    "codes (not_json, missing_key, ...), too_large (one record over the producer's limit), "
    "rate_limited (the batch of a 429) and unavailable (the batch of a 503).",
    ["source", "reason"],
    registry=REGISTRY,
)
SUBSCRIPTIONS = Gauge(
    "continust_subscriptions",
    "Live subscriptions (server-sent event streams) this worker serves now.",
    registry=REGISTRY,
)
SUBSCRIPTION_EVENTS = Counter(
    "continust_subscription_events_total",
    "Events sent to subscribers (snapshot windows, snapshot ends and output records; not heartbeats).",
    registry=REGISTRY,
)
SUBSCRIPTIONS_DROPPED = Counter(
    "continust_subscriptions_dropped_total",
    "Subscriptions the worker ended, by reason (slow_client: the client fell a whole buffer "
    "behind; worker_stopping; output_error: reading the output topic failed).",
    ["reason"],
    registry=REGISTRY,
)
