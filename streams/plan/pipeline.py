"""The pipeline file (TOML): what to read, how to key and time it, and which windowed tables to
keep. :func:`load_pipeline` returns validated, frozen specs or raises :class:`PipelineError`
naming the file, the source or table, what is wrong and what is allowed."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

from streams.plan.durations import parse_duration
from streams.plan.errors import PipelineError
from streams.plan.operators import OPERATOR_KINDS, Operator, callable_name, resolve_function
from windows.aggregates import Aggregation
from windows.aggregation_calls import parse_aggregation
from windows.custom_aggregation import Custom
from windows.spec import SessionWindows, SlidingWindows, TumblingWindows, WindowSpec
from windows.table import EMITS, WindowedAggregate

#: the Kafka security protocols and SASL mechanisms a pipeline may name (the Kafka clients take
#: these: :mod:`streams.kafka.kafka_security`)
KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: the log line formats (:mod:`streams.telemetry.logfmt`)
LOG_FORMATS = ("logfmt", "json")

GUARANTEES = ("exactly_once", "at_least_once")
#: the [app] memory limits, each a whole number of MiB (:class:`streams.settings.Settings`)
MEMORY_LIMITS = ("state_cache_mb", "fetch_buffer_mb", "store_memory_mb")
WINDOW_TYPES = ("tumbling", "sliding", "session")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class AppSpec:
    id: str
    processing_guarantee: str | None = None
    commit_interval_ms: int | None = None
    max_future_ms: int | None = None
    table_standby_replicas: int | None = None
    session_timeout_ms: int | None = None
    broker_timeout_ms: int | None = None
    #: the broker aborts a transaction open this long (``Settings.transaction_timeout_ms``)
    transaction_timeout_ms: int | None = None
    #: no progress for this long while records wait to be read: ``/health`` answers 503
    wedged_after_ms: int | None = None
    state_cache_mb: int | None = None
    fetch_buffer_mb: int | None = None
    store_memory_mb: int | None = None
    #: ``logfmt`` or ``json`` (:mod:`streams.telemetry.logfmt`)
    log_format: str | None = None
    #: replicas of every topic the engine creates; None: the broker's ``default.replication.factor``
    replication_factor: int | None = None
    #: ``min.insync.replicas`` of every topic the engine creates; None: the broker's default
    min_insync_replicas: int | None = None


@dataclass(frozen=True)
class ApiSpec:
    """The ``[api]`` table: the HTTP API's tokens, TLS and limits (:mod:`streams.api.api_auth`).
    Paths are as written (relative ones to the worker's working directory)."""

    tokens_file: str | None = None
    protect_metrics: bool | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    #: the CA bundle workers verify each other's certificates with (default: ``tls_cert``)
    tls_ca: str | None = None
    max_subscribers: int | None = None
    ingest_max_bytes: int | None = None
    ingest_rate: float | None = None
    #: connection limits (:class:`streams.api.http_server.ConnectionLimits`), in ms and a count
    head_timeout_ms: int | None = None
    body_timeout_ms: int | None = None
    idle_timeout_ms: int | None = None
    max_connections: int | None = None


@dataclass(frozen=True)
class KafkaSpec:
    """The ``[kafka]`` table: how the worker's Kafka clients authenticate
    (:mod:`streams.kafka.kafka_security`). Values are as written; whether they fit together is
    checked once the environment's are merged in (:meth:`streams.settings.Settings.with_pipeline`).
    The password is never written here, only the file that holds it."""

    security_protocol: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """Topics merged into one stream, keyed by the payload field ``key``; event time from the
    payload field ``timestamp`` (epoch ms or ISO-8601), or from the Kafka record when unset.
    Invalid records go to ``dead_letter_topic``; late events, when ``late_topic`` is set, go
    there unchanged.

    ``partitioned_by_key``: the producers already put every record on the partition of its key
    field (Kafka's default partitioner on the field's text, which a producer keying records by
    the field does), so the tables read the topics directly instead of a repartition topic.
    Every topic must then have the same number of partitions; a record on another partition is
    a dead letter (``wrong_partition``).

    ``idle_after_ms``: an input partition that has nothing left to read and has received
    nothing for this long stops holding back the clock of the tables it feeds, until it has
    records again (:mod:`windows.progress`).

    ``id_field``: the payload field (``id`` in the file) holding the event's id, named in the
    ``continust-cause-id`` header of the records it causes (:mod:`streams.plan.causation`); an event
    without the field simply has no id."""

    name: str
    topics: tuple[str, ...]
    key: str
    timestamp: str | None = None
    #: the function computing each event's key from its payload, in place of ``key`` (``""``
    #: then); ``key_by = "module:function"`` in the file (:mod:`streams.plan.operators`)
    key_by: Operator | None = None
    id_field: str | None = None
    dead_letter_topic: str | None = None
    late_topic: str | None = None
    partitioned_by_key: bool = False
    idle_after_ms: int = 5_000


@dataclass(frozen=True)
class TableSpec:
    """A windowed table: ``emit = "update"`` writes to ``output`` one record per window changed
    since the last commit, with its latest value; ``"change"`` one record per change as it
    happens; ``"final"`` one record per window when it closes. ``idle_timeout_ms``, when set, lets
    a partition's stream time follow the wall clock once it has received nothing for that long.
    ``operators``: the table's chain of user functions, applied in order to each event of the
    source before its windows take it (:mod:`streams.plan.operators`)."""

    name: str
    source: str
    window: WindowSpec
    aggregate_names: tuple[str, ...]
    aggregations: tuple[Aggregation, ...]
    emit: str = "update"
    output: str | None = None
    idle_timeout_ms: int | None = None
    #: the steps applied to the source's events before windows (:mod:`streams.plan.operators`)
    operators: tuple[Operator, ...] = ()

    @property
    def aggregate(self) -> WindowedAggregate:
        return WindowedAggregate(self.window, self.aggregations, self.aggregate_names, self.emit)


#: the values of ``traces`` (``[telemetry]``) and of ``OTEL_TRACES_EXPORTER`` understood
EXPORTERS = ("otlp", "none")


@dataclass(frozen=True)
class TelemetrySpec:
    """The pipeline's ``[telemetry]`` section: ``traces`` (``"otlp"`` or ``"none"``; unset:
    the ``OTEL_TRACES_EXPORTER`` variable decides), ``endpoint`` (the OTLP/HTTP base URL, like
    ``OTEL_EXPORTER_OTLP_ENDPOINT``; spans go to ``<endpoint>/v1/traces``) and ``service_name``
    (else ``OTEL_SERVICE_NAME``, else the app id); see :mod:`streams.telemetry.tracing`."""

    traces: str | None = None
    endpoint: str | None = None
    service_name: str | None = None


@dataclass(frozen=True)
class Pipeline:
    path: str
    app: AppSpec
    sources: tuple[SourceSpec, ...]
    tables: tuple[TableSpec, ...]
    api: ApiSpec = ApiSpec()
    kafka: KafkaSpec = KafkaSpec()
    telemetry: TelemetrySpec = TelemetrySpec()

    def source(self, name: str) -> SourceSpec:
        return next(s for s in self.sources if s.name == name)

    def table(self, name: str) -> TableSpec | None:
        return next((t for t in self.tables if t.name == name), None)


class _Reader:
    """Reads one TOML table, remembering where it is for error messages."""

    def __init__(self, path: Path, where: str, data: Any) -> None:
        self.path, self.where = path, where
        if not isinstance(data, Mapping):
            self.fail(f"must be a table, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data

    def fail(self, problem: str) -> NoReturn:
        raise PipelineError(self.path, self.where, problem)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            self.fail(f"unknown setting {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")

    def text(self, key: str, *, required: bool = True, name_like: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(f"`{key}` is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"`{key}` must be a non-empty string, got {value!r}")
        if name_like and not _NAME.match(value):
            self.fail(f"`{key}` = {value!r} may hold only letters, digits, '.', '_' and '-'")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"`{key}` must be true or false, got {value!r}")
        return value

    def duration(self, key: str, default: int | None = None) -> int | None:
        if key not in self.data:
            return default
        try:
            return parse_duration(self.data[key])
        except ValueError as exc:
            self.fail(f"`{key}`: {exc}")

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.data.get(key, default)
        if value not in allowed:
            self.fail(f"`{key}` = {value!r} is not supported; allowed: {', '.join(allowed)}")
        return str(value)


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(path, "file", "does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(path, "file", f"is not valid TOML: {exc}") from None
    return parse_pipeline(raw, path)


def parse_pipeline(raw: Mapping[str, Any], path: Path | str = "<pipeline>") -> Pipeline:
    path = Path(path)
    top = _Reader(path, "file", raw)
    top.check_keys(("app", "api", "kafka", "source", "table", "telemetry"))
    app = _app(_Reader(path, "[app]", raw.get("app")))
    sources = tuple(_source(path, i, s) for i, s in enumerate(_array(top, "source")))
    names = [s.name for s in sources]
    if not sources:
        top.fail("at least one [[source]] is required")
    for name in set(names):
        if names.count(name) > 1:
            top.fail(f"source name {name!r} is used more than once")
    tables = tuple(_table(path, i, t, names) for i, t in enumerate(_array(top, "table")))
    if not tables:
        top.fail("at least one [[table]] is required")
    table_names = [t.name for t in tables]
    for name in set(table_names):
        if table_names.count(name) > 1:
            top.fail(f"table name {name!r} is used more than once")
    api = _api(_Reader(path, "[api]", raw.get("api", {})))
    kafka = _kafka(_Reader(path, "[kafka]", raw.get("kafka", {})))
    telemetry = _telemetry(_Reader(path, "[telemetry]", raw.get("telemetry", {})))
    return Pipeline(
        path=str(path), app=app, sources=sources, tables=tables, api=api, kafka=kafka, telemetry=telemetry
    )


def _array(top: _Reader, key: str) -> list[Any]:
    value = top.data.get(key, [])
    if not isinstance(value, list):
        top.fail(f"`{key}` must be an array of tables, written [[{key}]]")
    return value


def _app(r: _Reader) -> AppSpec:
    r.check_keys(
        (
            "id",
            "processing_guarantee",
            "commit_interval",
            "max_future",
            "table_standby_replicas",
            "session_timeout",
            "broker_timeout",
            "transaction_timeout",
            "wedged_after",
            "log_format",
            "replication_factor",
            "min_insync_replicas",
            *MEMORY_LIMITS,
        )
    )
    guarantee = r.data.get("processing_guarantee")
    if guarantee is not None and guarantee not in GUARANTEES:
        r.fail(f"`processing_guarantee` = {guarantee!r}; allowed: {', '.join(GUARANTEES)}")
    commit_interval = r.duration("commit_interval")
    if commit_interval is not None and commit_interval <= 0:
        r.fail("`commit_interval` must be positive")
    standbys = r.data.get("table_standby_replicas")
    if standbys is not None and (isinstance(standbys, bool) or not isinstance(standbys, int) or standbys < 0):
        r.fail(f"`table_standby_replicas` must be a whole number, 0 or more, got {standbys!r}")
    session_timeout = r.duration("session_timeout")
    if session_timeout is not None and session_timeout < 6_000:
        r.fail("`session_timeout` must be at least 6s, the broker's minimum")
    broker_timeout = r.duration("broker_timeout")
    if broker_timeout is not None and broker_timeout < 1_000:
        r.fail("`broker_timeout` must be at least 1s")
    transaction_timeout = r.duration("transaction_timeout")
    if transaction_timeout is not None and transaction_timeout < 1_000:
        r.fail("`transaction_timeout` must be at least 1s")
    wedged_after = r.duration("wedged_after")
    if wedged_after is not None and wedged_after < 1_000:
        r.fail("`wedged_after` must be at least 1s")
    limits: dict[str, int | None] = {}
    for name in MEMORY_LIMITS:
        value = r.data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            r.fail(f"`{name}` must be a whole number of MiB, 1 or more, got {value!r}")
        limits[name] = value
    replicas: dict[str, int | None] = {}
    for name in ("replication_factor", "min_insync_replicas"):
        value = r.data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            r.fail(
                f"`{name}` must be a whole number, 1 or more (leave it out for the broker's "
                f"default), got {value!r}"
            )
        replicas[name] = value
    log_format = r.choice("log_format", LOG_FORMATS, "logfmt") if "log_format" in r.data else None
    return AppSpec(
        id=str(r.text("id", name_like=True)),
        processing_guarantee=guarantee,
        commit_interval_ms=commit_interval,
        max_future_ms=r.duration("max_future"),
        table_standby_replicas=standbys,
        session_timeout_ms=session_timeout,
        broker_timeout_ms=broker_timeout,
        transaction_timeout_ms=transaction_timeout,
        wedged_after_ms=wedged_after,
        log_format=log_format,
        **replicas,
        **limits,
    )


def _api(r: _Reader) -> ApiSpec:
    r.check_keys(
        (
            "tokens_file",
            "protect_metrics",
            "tls_cert",
            "tls_key",
            "tls_ca",
            "max_subscribers",
            "ingest_max_bytes",
            "ingest_rate",
            "head_timeout",
            "body_timeout",
            "idle_timeout",
            "max_connections",
        )
    )
    if ("tls_cert" in r.data) != ("tls_key" in r.data):
        r.fail("`tls_cert` and `tls_key` go together: give both or neither")
    counts: dict[str, int | None] = {}
    for name in ("max_subscribers", "ingest_max_bytes", "max_connections"):
        value = r.data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            r.fail(f"`{name}` must be a whole number, 1 or more, got {value!r}")
        counts[name] = value
    rate = r.data.get("ingest_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0):
        r.fail(f"`ingest_rate` must be a positive number of records per second, got {rate!r}")
    timeouts: dict[str, int | None] = {}
    for name in ("head_timeout", "body_timeout", "idle_timeout"):
        value = timeouts[name] = r.duration(name)
        if value is not None and value < 100:
            r.fail(f"`{name}` must be at least 100ms")
    return ApiSpec(
        tokens_file=r.text("tokens_file", required=False),
        protect_metrics=r.flag("protect_metrics") if "protect_metrics" in r.data else None,
        tls_cert=r.text("tls_cert", required=False),
        tls_key=r.text("tls_key", required=False),
        tls_ca=r.text("tls_ca", required=False),
        max_subscribers=counts["max_subscribers"],
        ingest_max_bytes=counts["ingest_max_bytes"],
        ingest_rate=None if rate is None else float(rate),
        head_timeout_ms=timeouts["head_timeout"],
        body_timeout_ms=timeouts["body_timeout"],
        idle_timeout_ms=timeouts["idle_timeout"],
        max_connections=counts["max_connections"],
    )


def _kafka(r: _Reader) -> KafkaSpec:
    names = tuple(f.name for f in fields(KafkaSpec))
    if "sasl_password" in r.data:
        r.fail(
            "the password is not written in the pipeline file: name the file that holds it "
            "with `sasl_password_file`, or set KAFKA_SASL_PASSWORD"
        )
    r.check_keys(names)
    protocol = r.text("security_protocol", required=False)
    if protocol is not None and protocol.upper() not in KAFKA_PROTOCOLS:
        r.fail(f"`security_protocol` = {protocol!r} is not supported; allowed: {', '.join(KAFKA_PROTOCOLS)}")
    mechanism = r.text("sasl_mechanism", required=False)
    if mechanism is not None and mechanism.upper() not in SASL_MECHANISMS:
        r.fail(f"`sasl_mechanism` = {mechanism!r} is not supported; allowed: {', '.join(SASL_MECHANISMS)}")
    return KafkaSpec(
        security_protocol=protocol.upper() if protocol else None,
        sasl_mechanism=mechanism.upper() if mechanism else None,
        **{
            name: r.text(name, required=False)
            for name in names
            if name not in ("security_protocol", "sasl_mechanism")
        },
    )


def _telemetry(r: _Reader) -> TelemetrySpec:
    r.check_keys(("traces", "endpoint", "service_name"))
    traces = r.choice("traces", EXPORTERS, "none") if "traces" in r.data else None
    return TelemetrySpec(
        traces=traces,
        endpoint=r.text("endpoint", required=False),
        service_name=r.text("service_name", required=False),
    )


def _source(path: Path, index: int, data: Any) -> SourceSpec:
    name = data.get("name") if isinstance(data, Mapping) else None
    r = _Reader(path, f"source {name!r}" if name else f"[[source]] #{index + 1}", data)
    r.check_keys(
        (
            "name",
            "topics",
            "key",
            "key_by",
            "timestamp",
            "id",
            "dead_letter_topic",
            "late_topic",
            "partitioned_by_key",
            "idle_after",
        )
    )
    topics = r.data.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) and t for t in topics):
        r.fail('`topics` must be a non-empty list of topic names, like ["web-clicks", "app-clicks"]')
    for topic in topics:
        if not _NAME.match(topic):
            r.fail(f"topic {topic!r} may hold only letters, digits, '.', '_' and '-'")
    if len(set(topics)) != len(topics):
        r.fail("`topics` names a topic more than once")
    idle_after = r.duration("idle_after", SourceSpec.idle_after_ms)
    if idle_after is None or idle_after < 0:
        r.fail("`idle_after` must be 0s or more")
    key_by = _key_by(r, path)
    if key_by is not None and "key" in r.data:
        r.fail("`key` and `key_by` both name the key: keep one")
    if key_by is not None and r.flag("partitioned_by_key"):
        r.fail(
            "`key_by` computes the key, so the records are not on the partition of it: they go "
            "through the repartition topic (leave out `partitioned_by_key`)"
        )
    return SourceSpec(
        name=str(r.text("name", name_like=True)),
        topics=tuple(topics),
        key="" if key_by is not None else str(r.text("key")),
        key_by=key_by,
        timestamp=r.text("timestamp", required=False),
        id_field=r.text("id", required=False),
        dead_letter_topic=r.text("dead_letter_topic", required=False, name_like=True),
        late_topic=r.text("late_topic", required=False, name_like=True),
        partitioned_by_key=r.flag("partitioned_by_key"),
        idle_after_ms=idle_after,
    )


def _table(path: Path, index: int, data: Any, sources: list[str]) -> TableSpec:
    name = data.get("name") if isinstance(data, Mapping) else None
    r = _Reader(path, f"table {name!r}" if name else f"[[table]] #{index + 1}", data)
    r.check_keys(("name", "source", "window", "aggregate", "emit", "output", "idle_timeout", "operators"))
    table_name = str(r.text("name", name_like=True))
    source = str(r.text("source"))
    if source not in sources:
        r.fail(f"`source` = {source!r} is not a [[source]] of this file; known: {', '.join(sources)}")
    window = _window(_Reader(path, f"table {table_name!r} window", r.data.get("window")))
    agg = _Reader(path, f"table {table_name!r} aggregate", r.data.get("aggregate"))
    if not agg.data:
        agg.fail('needs at least one aggregation, like { clicks = "count()" }')
    aggregations: list[Aggregation] = []
    for out_name, call in agg.data.items():
        if isinstance(call, Custom):  # from the Python front end
            aggregations.append(call)
            continue
        if not isinstance(call, str):
            agg.fail(f'`{out_name}` must be a string like "sum(amount)", got {call!r}')
        try:
            custom = _CUSTOM.match(call)
            if custom is not None:
                aggregations.append(custom_aggregation(custom[1], custom[2], path))
            else:
                aggregations.append(parse_aggregation(call))
        except ValueError as exc:
            agg.fail(f"`{out_name}`: {exc}")
    emit = r.choice("emit", EMITS, "update")
    idle_timeout = r.duration("idle_timeout")
    if idle_timeout is not None and idle_timeout <= 0:
        r.fail("`idle_timeout` must be positive (leave it out to turn it off)")
    return TableSpec(
        name=table_name,
        source=source,
        window=window,
        aggregate_names=tuple(agg.data),
        aggregations=tuple(aggregations),
        emit=emit,
        output=r.text("output", required=False, name_like=True),
        idle_timeout_ms=idle_timeout,
        operators=_operators(r, path),
    )


def _key_by(r: _Reader, path: Path) -> Operator | None:
    """The source's ``key_by``: a ``"module:function"`` name, or a callable from the Python
    front end."""
    given = r.data.get("key_by")
    if given is None:
        return None
    if callable(given):
        return Operator("key_by", given, callable_name(given))
    if not isinstance(given, str):
        r.fail(f'`key_by` takes "module:function", got {given!r}')
    try:
        return Operator("key_by", resolve_function(given, path.parent if path.suffix else None), given)
    except ValueError as exc:
        r.fail(f"`key_by`: {exc}")


#: a user's aggregation: ``"module:Class(field)"`` or ``"module:Class()"``
_CUSTOM = re.compile(r"^\s*([A-Za-z_][\w.]*:[A-Za-z_][\w.]*)\s*\(\s*([A-Za-z_][A-Za-z0-9_.-]*)?\s*\)\s*$")


def custom_aggregation(reference: str, field: str | None, path: Path) -> Custom:
    """The user's aggregation ``reference`` names (``module:Class``, made with no arguments),
    reading ``field`` (:mod:`windows.custom_aggregation`); raises ``ValueError``."""
    made = resolve_function(reference, path.parent if path.suffix else None)()
    methods = ("initialize", "add", "merge", "result")
    missing = [m for m in methods if not (hasattr(made, m) and callable(getattr(made, m)))]
    if missing:
        raise ValueError(f"{reference} lacks {', '.join(missing)} (an aggregation has {', '.join(methods)})")
    return Custom(made, field, reference)


def _operators(r: _Reader, path: Path) -> tuple[Operator, ...]:
    """The table's ``operators``: a list of one-key tables, ``{ filter = "module:function" }``,
    ``map`` or ``flat_map`` likewise (or a callable in place of the name, from the Python
    front end); each function is imported now, so a wrong name stops the worker at start."""
    steps = r.data.get("operators", [])
    if not isinstance(steps, list):
        r.fail(f'`operators` must be a list like [{{ filter = "module:function" }}], got {steps!r}')
    near = path.parent if path.suffix else None
    kinds = ", ".join(OPERATOR_KINDS)
    found = []
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, Mapping) or len(step) != 1:
            r.fail(f"`operators` step {number} must be one of {kinds} = a function, got {step!r}")
        ((kind, given),) = step.items()
        if kind not in OPERATOR_KINDS:
            r.fail(f"`operators` step {number}: {kind!r} is not an operator; allowed: {kinds}")
        if callable(given):
            found.append(Operator(kind, given, callable_name(given)))
            continue
        if not isinstance(given, str):
            r.fail(f'`operators` step {number}: {kind} takes "module:function", got {given!r}')
        try:
            found.append(Operator(kind, resolve_function(given, near), given))
        except ValueError as exc:
            r.fail(f"`operators` step {number} ({kind}): {exc}")
    return tuple(found)


_WINDOW_KEYS = {
    "tumbling": ("type", "size", "grace", "retention"),
    "sliding": ("type", "size", "slide", "grace", "retention"),
    "session": ("type", "gap", "grace", "retention"),
}
_EXAMPLES = {
    "tumbling": 'size = "1m"',
    "sliding": 'size = "1m", slide = "10s"',
    "session": 'gap = "30s"',
}


def _window(r: _Reader) -> WindowSpec:
    kind = r.choice("type", WINDOW_TYPES, "")
    r.check_keys(_WINDOW_KEYS[kind])

    def required(key: str) -> int:
        value = r.duration(key)
        if value is None:
            r.fail(f"`{key}` is required for {kind} windows, like {{ type = {kind!r}, {_EXAMPLES[kind]} }}")
        return value

    grace = int(r.duration("grace", 0) or 0)
    retention = int(r.duration("retention", 0) or 0)
    try:
        if kind == "tumbling":
            return TumblingWindows(size_ms=required("size"), grace_ms=grace, retention_ms=retention)
        if kind == "sliding":
            return SlidingWindows(
                size_ms=required("size"), slide_ms=required("slide"), grace_ms=grace, retention_ms=retention
            )
        return SessionWindows(gap_ms=required("gap"), grace_ms=grace, retention_ms=retention)
    except ValueError as exc:
        r.fail(f"{kind}: {exc}")
