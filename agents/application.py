"""Build the Faust app that runs a pipeline: check the cluster's credentials, check and create
its topics, install one source stage per source and one table stage per table (with the commit
gate and sequence they share), the metrics sensor, the broker watch, liveness and readiness,
and the HTTP API (query, ingest and subscribe routes, over a server with connection limits)."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.assignor import PartitionAssignor
from faust.auth import Credentials

from agents.app_runtime import AppRuntime
from agents.broker_watch import BrokerWatch
from agents.faust_compat import PromptTableManager, open_broker_connection, serve_web_with
from agents.keyed_stream import KeyedStream
from agents.liveness import Liveness
from agents.merge import SourceStage, repartition_topic
from agents.readiness import readiness
from agents.restored_partitions import RestoredPartitions
from agents.runtime_state import WorkerState
from agents.sensor import MetricsSensor
from agents.sink import Sink
from agents.stage_wiring import StageOptions, build_stages
from agents.table_queries import PipelineReads
from agents.windowed import TableStage
from streams.api.api_auth import OPEN, TokenFileError, TokenSet, load_tokens
from streams.api.api_forward import Peers
from streams.api.api_routes import Route
from streams.api.http_api import register_http_api, web_application_options
from streams.api.http_ingest import IngestSource, ingest_route
from streams.api.ingest_body import SourceRules
from streams.api.ingest_producer import IngestProducer
from streams.api.ingest_rate import IngestRateLimit
from streams.api.query_budget import QueryBudget
from streams.api.subscriptions import Followable, Subscriptions, subscription_routes
from streams.api.table_routes import table_routes
from streams.kafka.credentials_check import check_credentials
from streams.kafka.kafka_security import KafkaSecurity
from streams.kafka.topic_admin import broker_replication_factor, ensure_topics, partition_counts
from streams.plan.dead_letters import dead_letter_topic
from streams.plan.errors import PipelineError
from streams.plan.pipeline import Pipeline
from streams.settings import Settings
from streams.telemetry.metrics import BACKPRESSURE_PAUSES, BACKPRESSURE_SECONDS, register_runtime

MIB = 1024 * 1024
#: records left to read above which processing is behind, and queries keep to their share of
#: the event loop (:mod:`streams.api.query_budget`)
BEHIND_RECORDS = 1_000


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic of a table's state, as Faust names a table's changelog."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True)
class TopicPlan:
    """Partition counts the pipeline needs: per source (its largest input topic) and for every
    topic the engine creates (repartition, output, dead letters, table changelogs)."""

    source_partitions: dict[str, int]
    create: dict[str, int]
    topic_partitions: dict[str, int]
    #: the replication factor of the topics Faust itself creates (its partition assignor's
    #: topic, and any changelog it finds missing): the setting, or the broker's default
    faust_replication_factor: int = 1


async def plan_topics(pipeline: Pipeline, settings: Settings) -> TopicPlan:
    """Check that every input topic exists and every existing output topic is co-partitioned
    with its table; create the topics the engine owns."""
    inputs = {t for s in pipeline.sources for t in s.topics}
    await check_credentials(settings.bootstrap_servers, settings.kafka, open_broker_connection)
    counts = await partition_counts(settings.bootstrap_servers, inputs, settings.kafka)
    missing = sorted(inputs - set(counts))
    if missing:
        raise PipelineError(
            pipeline.path,
            "source topics",
            f"{', '.join(missing)} do not exist on {settings.bootstrap_servers}; create them first",
        )
    per_source = {s.name: max(counts[t] for t in s.topics) for s in pipeline.sources}
    for s in pipeline.sources:
        if s.partitioned_by_key and len({counts[t] for t in s.topics}) > 1:
            sizes = ", ".join(f"{t}: {counts[t]}" for t in s.topics)
            raise PipelineError(
                pipeline.path,
                f"source {s.name!r}",
                f"partitioned_by_key = true needs every topic to have the same number of partitions "
                f"({sizes}); give them the same number or leave partitioned_by_key out (repartition)",
            )
    create: dict[str, int] = {}
    for s in pipeline.sources:
        if not s.partitioned_by_key:
            create[repartition_topic(settings.app_id, s.name)] = per_source[s.name]
        create[dead_letter_topic(settings.app_id, s.dead_letter_topic)] = 1
        if s.late_topic:
            create[s.late_topic] = per_source[s.name]
    for t in pipeline.tables:
        if t.output:
            create[t.output] = per_source[t.source]
    # every internal topic gets the replication settings: the replication factor (-1: the
    # broker's default.replication.factor) and min.insync.replicas (unset: the broker's), never a
    # hard-coded 1 that would lose state with one broker on a production cluster
    replicas, internal = settings.replication_factor, settings.internal_topic_config()
    actual = await ensure_topics(
        settings.bootstrap_servers, create, internal, replicas, security=settings.kafka
    )
    # each table's changelog, compacted, before Faust looks for it: created here, its partitions
    # have leaders before the group assigns them, where Faust would create it while two workers
    # start and read its end offsets at once
    changelogs = {changelog_topic(settings.app_id, t.name): per_source[t.source] for t in pipeline.tables}
    await ensure_topics(
        settings.bootstrap_servers,
        changelogs,
        {**internal, "cleanup.policy": "compact"},
        replicas,
        security=settings.kafka,
    )
    create.update(changelogs)
    for t in pipeline.tables:
        if t.output and actual[t.output] != per_source[t.source]:
            raise PipelineError(
                pipeline.path,
                f"table {t.name!r}",
                f"output topic {t.output!r} has {actual[t.output]} partitions but source "
                f"{t.source!r} has {per_source[t.source]}; outputs are co-partitioned with their "
                "input, so give it the same number or name a new topic",
            )
    faust_replicas = (
        replicas
        if replicas > 0
        else await broker_replication_factor(settings.bootstrap_servers, settings.kafka)
    )
    return TopicPlan(
        source_partitions=per_source,
        create=create,
        topic_partitions=dict(counts),
        faust_replication_factor=faust_replicas,
    )


@dataclass
class PipelineApp:
    app: faust.App
    runtime: AppRuntime
    pipeline: Pipeline
    settings: Settings
    broker: BrokerWatch
    sources: dict[str, SourceStage] = field(default_factory=dict)
    #: what each source's tables read (:mod:`agents.keyed_stream`)
    streams: dict[str, KeyedStream] = field(default_factory=dict)
    tables: dict[str, TableStage] = field(default_factory=dict)
    state: WorkerState | None = None

    # TableQueries, for the HTTP API
    def table_names(self) -> list[str]:
        return sorted(self.tables)

    def own_url(self) -> str:
        return str(self.app.conf.canonical_url)

    def health(self) -> dict[str, Any]:
        assignment = sorted(f"{tp.topic}:{tp.partition}" for tp in self.app.assignor.assigned_actives())
        owners = {
            url: {topic: sorted(parts) for topic, parts in tps.items() if topic.endswith("-changelog")}
            for url, tps in cast(PartitionAssignor, self.app.assignor).changelog_distribution.items()
        }
        broker = self.broker.health(time.monotonic())
        status = "ok" if broker["broker"] == "reachable" else "broker_unreachable"
        wedged = None
        if self.state is not None:
            restoring = sum(self.state.recovery_remaining().values())
            wedged = self.runtime.liveness.check(self.state.processing_lag(), restoring)
        if wedged is not None and status == "ok":
            status = "wedged"
        return {
            "status": status,
            **({"reason": wedged} if wedged is not None else {}),
            **broker,
            "app": self.settings.app_id,
            "active_partitions": assignment,
            "owners": owners,
        }

    def ready(self) -> dict[str, Any]:
        return readiness(self.app).body()


def fetch_size_per_partition(settings: Settings, plan: TopicPlan) -> int:
    """The most one fetch returns per partition (bytes): the fetch buffer shared by every
    partition the worker might be assigned (source, keyed and changelog topics), at least 64 KiB
    so a fetch always makes progress on large records."""
    partitions = sum(plan.topic_partitions.values()) + sum(plan.create.values())
    return max(64 * 1024, settings.fetch_buffer_mb * MIB // max(1, partitions))


def store_options(settings: Settings, pipeline: Pipeline, plan: TopicPlan) -> dict[str, int]:
    """RocksDB options of each table partition's database: ``store_memory_mb`` shared by every
    database the worker could open (one per table and partition), a quarter for each of two
    write buffers and half for the block cache, each at least 1 MiB."""
    databases = sum(plan.source_partitions[t.source] for t in pipeline.tables) or 1
    per_db = settings.store_memory_mb * MIB // databases
    return {
        "write_buffer_size": max(MIB, per_db // 4),
        "max_write_buffer_number": 2,
        "block_cache_size": max(MIB, per_db // 2),
    }


def broker_credentials(security: KafkaSecurity) -> Credentials | None:
    """The Faust app's ``broker_credentials``: its consumers and producers (the transactional
    ones too) connect as every other client of the worker does (:mod:`streams.kafka.kafka_security`);
    ``None`` for ``PLAINTEXT``."""
    context = security.ssl_context()
    if security.uses_sasl:
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def api_tokens(settings: Settings, pipeline: Pipeline) -> TokenSet:
    if settings.api_tokens_file is None:
        return OPEN
    try:
        return load_tokens(settings.api_tokens_file)
    except TokenFileError as exc:
        raise PipelineError(pipeline.path, "[api] tokens_file", str(exc)) from None


def api_tls(settings: Settings, pipeline: Pipeline) -> ssl.SSLContext | None:
    """The server's TLS context when the API is served over TLS."""
    if settings.api_tls_cert is None or settings.api_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.api_tls_cert, settings.api_tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise PipelineError(pipeline.path, "[api] tls_cert/tls_key", f"cannot load: {exc}") from None
    return context


def ingest_sources(built: PipelineApp) -> dict[str, IngestSource]:
    """Each source as the ingest route needs it: topics, record rules, keyed partitions."""
    return {
        name: IngestSource(
            name=name,
            topics=stage.spec.topics,
            rules=SourceRules(
                stage.spec.key, stage.spec.timestamp, built.settings.max_future_ms, stage.spec.key_by
            ),
            keyed_partitions=stage.partitions,
        )
        for name, stage in built.sources.items()
    }


def api_peer_tls(settings: Settings, pipeline: Pipeline) -> ssl.SSLContext | None:
    """The TLS context a worker asks the other workers with when the API is served over TLS:
    their certificates must chain to ``api_tls_ca`` (default: the worker's own certificate
    file, so workers that serve one certificate, self-signed or not, trust each other; any
    certificate of the file is a trust anchor, a root or not) and name the host each worker
    advertises (``web_host``, in a subject alternative name)."""
    if settings.api_tls_cert is None:
        return None
    anchors = settings.api_tls_ca or settings.api_tls_cert
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(anchors))
    except (OSError, ssl.SSLError) as exc:
        raise PipelineError(pipeline.path, "[api] tls_ca", f"cannot load {anchors}: {exc}") from None
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def query_budget(built: PipelineApp) -> QueryBudget:
    """Queries keep to their share of the event loop only while processing is behind: more
    than :data:`BEHIND_RECORDS` records left to read over the partitions it processes."""
    state = built.state

    def contended() -> bool:
        return state is None or state.processing_lag() > BEHIND_RECORDS

    return QueryBudget(contended=contended)


def api_routes(built: PipelineApp, peers: Peers) -> list[Route]:
    """The routes beyond the core ones (:func:`streams.api.http_api.core_routes`): ingest,
    subscriptions, and the query routes (which replace the core point query)."""
    producer = IngestProducer(built.settings.bootstrap_servers, security=built.settings.kafka)

    async def stop_producer(_: object) -> None:
        await producer.close()

    built.app.web.web_app.on_cleanup.append(stop_producer)  # type: ignore[attr-defined]
    ingest = ingest_route(
        ingest_sources(built),
        producer,
        max_bytes=built.settings.api_ingest_max_bytes,
        rate_limit=IngestRateLimit(built.settings.api_ingest_rate),
        limits=built.settings.connection_limits,
    )
    restored = RestoredPartitions(built.app)
    restored.install()
    subscriptions = Subscriptions(built.settings.api_max_subscribers)
    subscriptions.stop_with(built.app.web.web_app)  # type: ignore[attr-defined]
    followable = {
        name: Followable(stage.spec.output, stage.partitions) for name, stage in built.tables.items()
    }
    return [
        ingest,
        *subscription_routes(
            built, peers, subscriptions, followable, built.settings.bootstrap_servers, built.settings.kafka
        ),
        *table_routes(PipelineReads(built.app, built.tables, restored), peers, query_budget(built)),
    ]


def build_app(pipeline: Pipeline, settings: Settings, plan: TopicPlan) -> PipelineApp:
    tokens = api_tokens(settings, pipeline)
    tls = api_tls(settings, pipeline)
    scheme = "https" if tls is not None else "http"
    brokers = ";".join(settings.bootstrap_servers.split(","))
    app = faust.App(
        settings.app_id,
        broker=f"continust://{brokers}",
        store="rocksdb://",
        datadir=str(settings.data_dir),
        processing_guarantee=settings.processing_guarantee,
        broker_commit_interval=settings.commit_interval_ms / 1000,
        consumer_auto_offset_reset="earliest",
        # Faust takes no "broker default" (-1), so plan_topics asked the broker for its number
        topic_replication_factor=plan.faust_replication_factor,
        topic_allow_declare=True,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        # Faust's own views would serve internal state (a key's raw table value, partition
        # maps) beside the API; continust serves its own routes only
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_bind=settings.web_bind or settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=f"{scheme}://{settings.web_host}:{settings.web_port}",
        web_ssl_context=tls,
        web_application_options=web_application_options(),
        autodiscover=False,
        table_standby_replicas=settings.table_standby_replicas,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_ms / 1000 / 6),
        consumer_group_instance_id=settings.group_instance_id,
        consumer_max_fetch_size=fetch_size_per_partition(settings, plan),
        broker_credentials=broker_credentials(settings.kafka),
        TableManager=PromptTableManager,
    )
    serve_web_with(app, settings.connection_limits)
    app.sensors.add(MetricsSensor())
    runtime = AppRuntime.attach(app, Liveness(settings.wedged_after_ms))
    runtime.transaction_timeout_ms = settings.transaction_timeout_ms
    runtime.gate.memory_limits["state_cache"] = settings.state_cache_mb * MIB
    for limit in runtime.gate.memory_limits:  # the fetch pauses, exported at 0 from the start
        BACKPRESSURE_PAUSES.labels(limit=limit)
        BACKPRESSURE_SECONDS.labels(limit=limit)
    exactly_once = settings.processing_guarantee == "exactly_once"
    sink = Sink(runtime, exactly_once)
    broker = BrokerWatch(settings.bootstrap_servers, settings.broker_timeout_ms / 1000, settings.kafka)
    built = PipelineApp(app=app, runtime=runtime, pipeline=pipeline, settings=settings, broker=broker)
    stages = build_stages(
        app,
        runtime,
        sink,
        pipeline,
        StageOptions(
            app_id=settings.app_id,
            max_future_ms=settings.max_future_ms,
            source_partitions=plan.source_partitions,
            topic_partitions=plan.topic_partitions,
            store_options=store_options(settings, pipeline, plan),
        ),
    )
    built.sources, built.streams, built.tables = stages.sources, stages.streams, stages.tables
    built.state = WorkerState(
        app, {name: stage.windows for name, stage in built.tables.items()}, lambda: set(runtime.batch_routes)
    )
    register_runtime(built.state)
    # over TLS, workers ask each other verifying the certificate against the configured CA
    peers = Peers(built.own_url(), ssl=api_peer_tls(settings, pipeline))
    register_http_api(
        app,
        built,
        tokens=tokens,
        extra_routes=api_routes(built, peers),
        protect_metrics=settings.api_protect_metrics,
        peers=peers,
    )
    return built


def prepare(pipeline: Pipeline, settings: Settings) -> PipelineApp:
    """Plan the topics (talks to the cluster) and build the app; call outside an event loop."""
    plan = asyncio.run(plan_topics(pipeline, settings))
    return build_app(pipeline, settings, plan)
