"""Prometheus metrics of a worker, served at ``GET /metrics``.

Base units throughout (seconds, bytes, records), counters end in ``_total``, durations are
``_seconds`` histograms. Histograms are observed once per batch, commit, rebalance, recovery,
output record or HTTP request, never once per input event. The families computed when scraped
(consumer lag, recovery remaining, state bytes) come from :class:`RuntimeCollector`, which reads
the runtime through the :class:`RuntimeState` it is given; the process metrics are
prometheus-client's own ``ProcessCollector`` and ``PlatformCollector``, on :data:`REGISTRY`.

``continust_backpressure_pauses_total`` and ``continust_backpressure_seconds_total`` are the
fetch pauses: fetching stops only for backpressure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

#: buckets of the duration histograms (seconds): 1 ms to 5 min
# fmt: off
SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)
# fmt: on
#: buckets of the batch size histogram (records)
RECORDS_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

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
HTTP_REJECTED = Counter(
    "continust_http_rejected_total",
    "Requests and connections the web server refused before any route ran, by reason: "
    "bad_request (the parser refused it), request_timeout (head or body too slow), "
    "too_many_connections, internal_error, and the like.",
    ["reason"],
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
RANKED_WINDOWS = Gauge(
    "continust_ranked_windows",
    "Windows held ranked by value for top-N queries (built on a partition's first top-N), by table.",
    ["table"],
    registry=REGISTRY,
)
RANKS_DROPPED = Counter(
    "continust_ranks_dropped_total",
    "Partitions' ranked windows dropped because they could not take a committed write (the next "
    "top-N builds them again), by table.",
    ["table"],
    registry=REGISTRY,
)
OPERATOR_EVENTS = Counter(
    "continust_operator_events_total",
    "Events into (direction=in) and out of (direction=out) each step of a table's chain of user "
    "functions, by table and operator (kind(function)).",
    ["table", "operator", "direction"],
    registry=REGISTRY,
)
OPERATOR_ERRORS = Counter(
    "continust_operator_errors_total",
    "Records a step of a table's chain failed on (dead-lettered with reason user_error), by "
    "table and operator.",
    ["table", "operator"],
    registry=REGISTRY,
)
RANKS_RELEASED = Counter(
    "continust_ranks_released_total",
    "Partitions' ranked windows released because more committed writes waited for them than half "
    "their windows (at least 10,000) while no top-N read them; the next top-N builds them again. "
    "By table.",
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
BATCH_RECORDS = Histogram(
    "continust_batch_records",
    "Records in each batch the worker processed (one partition's records of one fetch).",
    registry=REGISTRY,
    buckets=RECORDS_BUCKETS,
)
BATCH_SECONDS = Histogram(
    "continust_batch_seconds",
    "Seconds spent processing each batch (under the commit gate, outputs handed to the producer).",
    registry=REGISTRY,
    buckets=SECONDS_BUCKETS,
)
COMMIT_SECONDS = Histogram(
    "continust_commit_seconds",
    "Seconds each commit took: held-back writes, state, offsets and, under exactly_once, the "
    "transactions' commits (every step of the commit sequence).",
    registry=REGISTRY,
    buckets=SECONDS_BUCKETS,
)
GC_PAUSE_SECONDS = Histogram(
    "continust_gc_pause_seconds",
    "Seconds the worker stood still for each collection of Python's cycle collector, by "
    "generation (2: the whole heap; its pauses grow with the objects the worker holds).",
    ["generation"],
    registry=REGISTRY,
    buckets=SECONDS_BUCKETS,
)
COMMIT_FAILURES = Counter(
    "continust_commit_failures_total",
    "Commits that failed: a commit that raised (a transaction or an offset commit), and an "
    "at_least_once offset commit that failed (one refused because the group rebalanced aside).",
    registry=REGISTRY,
)
REBALANCES = Counter(
    "continust_rebalances_total",
    "Rebalances of the consumer group this worker took part in (counted when they start).",
    registry=REGISTRY,
)
REBALANCE_SECONDS = Counter(
    "continust_rebalance_seconds_total",
    "Seconds this worker spent rebalancing: from a rebalance's start until its partitions were "
    "restored and processing resumed.",
    registry=REGISTRY,
)
RECOVERY_SECONDS = Histogram(
    "continust_recovery_seconds",
    "Seconds each recovery (restoring tables from their changelogs after a rebalance) took.",
    registry=REGISTRY,
    buckets=SECONDS_BUCKETS,
)
OPEN_WINDOWS = Gauge(
    "continust_open_windows",
    "Windows not closed yet in the table partitions this worker holds, by table.",
    ["table"],
    registry=REGISTRY,
)
E2E_LATENCY = Histogram(
    "continust_e2e_latency_seconds",
    "Per output record emitted by an input event: the time the record was handed to the "
    "producer minus the Kafka timestamp of the input record of that event, by table.",
    ["table"],
    registry=REGISTRY,
    buckets=SECONDS_BUCKETS,
)
HTTP_REQUEST_SECONDS = Histogram(
    "continust_http_request_seconds",
    "Seconds to answer each HTTP request, by route (its path template; unmatched paths: "
    '"other"), method and status.',
    ["route", "method", "status"],
    registry=REGISTRY,
    buckets=SECONDS_BUCKETS,
)


class RuntimeState(Protocol):
    """What :class:`RuntimeCollector` reads from the runtime when scraped. Every method answers
    synchronously from memory or the local disk, and never raises for a worker that is not
    running yet (empty answers instead)."""

    def consumer_lag(self) -> Mapping[tuple[str, int], int]:
        """Records left to read (last stable offset minus position), per assigned (topic,
        partition) whose fetch state is known."""
        ...

    def recovery_remaining(self) -> Mapping[tuple[str, int], int]:
        """Changelog records left to restore, per (changelog topic, partition) being restored."""
        ...

    def state_bytes(self) -> Mapping[str, int]:
        """Bytes of each table's state on the local disk."""
        ...

    def ready(self) -> bool:
        """Whether the worker is ready now, by the rule of ``GET /ready``."""
        ...


class RuntimeCollector(Collector):
    """The families read from the runtime when scraped: ``continust_consumer_lag_records``
    (topic, partition), ``continust_recovery_remaining_records`` (changelog topic, partition),
    ``continust_state_bytes`` (table) and ``continust_ready`` (1 when ``GET /ready`` would
    answer 200, else 0)."""

    def __init__(self, state: RuntimeState) -> None:
        self.state = state

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families({}, {}, {}, False)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.state
        yield from self._families(
            state.consumer_lag(), state.recovery_remaining(), state.state_bytes(), state.ready()
        )

    @staticmethod
    def _families(
        lag: Mapping[tuple[str, int], int],
        remaining: Mapping[tuple[str, int], int],
        state_bytes: Mapping[str, int],
        ready: bool,
    ) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "continust_consumer_lag_records",
            "Records left to read (last stable offset minus the fetch position) of each assigned "
            "partition, by topic and partition.",
            labels=["topic", "partition"],
        )
        for (topic, partition), records in sorted(lag.items()):
            family.add_metric([topic, str(partition)], records)
        yield family
        family = GaugeMetricFamily(
            "continust_recovery_remaining_records",
            "Changelog records left to restore before the worker is ready, by changelog topic "
            "and partition (0 once restored).",
            labels=["topic", "partition"],
        )
        for (topic, partition), records in sorted(remaining.items()):
            family.add_metric([topic, str(partition)], records)
        yield family
        family = GaugeMetricFamily(
            "continust_state_bytes",
            "Bytes of each table's state (its RocksDB files) on the local disk, by table.",
            labels=["table"],
        )
        for table, size in sorted(state_bytes.items()):
            family.add_metric([table], size)
        yield family
        yield GaugeMetricFamily(
            "continust_ready",
            "1 when the worker is ready (GET /ready answers 200: joined, assigned, not rebalancing, "
            "tables restored), else 0.",
            value=1 if ready else 0,
        )


def register_runtime(state: RuntimeState) -> RuntimeCollector:
    """Add the scrape-time families of ``state`` to :data:`REGISTRY` (a worker calls it once;
    a second collector replaces the first, so a test may build several apps)."""
    global _RUNTIME
    if _RUNTIME is not None:
        REGISTRY.unregister(_RUNTIME)
    _RUNTIME = RuntimeCollector(state)
    REGISTRY.register(_RUNTIME)
    return _RUNTIME


_RUNTIME: RuntimeCollector | None = None
