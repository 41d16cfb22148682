"""Worker settings, from the environment, the pipeline file's [app] table and the command line
(later sources win in that order: environment < pipeline file < command line)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from streams.api.http_server import ConnectionLimits
from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity, KafkaSecurityError, read_secret
from streams.plan.durations import parse_duration
from streams.plan.errors import PipelineError
from streams.plan.pipeline import GUARANTEES, Pipeline
from streams.telemetry.logfmt import LOG_FORMATS


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _duration(text: str | None) -> int | None:
    return parse_duration(text) if text else None


#: Kafka's default ``transaction.max.timeout.ms``: the longest transaction timeout a broker
#: accepts unless configured otherwise
TRANSACTION_MAX_TIMEOUT_MS = 900_000


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "continust"
    data_dir: Path = Path(".data")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    #: the address the HTTP server listens on; unset: ``web_host``. ``web_host`` is then only
    #: the address other workers and clients reach this one at (its advertised URL), e.g. a
    #: pod's stable DNS name while the server listens on 0.0.0.0
    web_bind: str | None = None
    processing_guarantee: str = "exactly_once"
    commit_interval_ms: int = 1_000
    max_future_ms: int = 3_600_000
    table_standby_replicas: int = 0
    session_timeout_ms: int = 45_000
    #: static group membership (KIP-345): a worker restarted with the same id takes its
    #: partitions back at once instead of after the session timeout; unique per worker
    group_instance_id: str | None = None
    #: how long the worker keeps running without reaching any broker before it exits non-zero
    broker_timeout_ms: int = 300_000
    #: the broker aborts a transaction open this long; unset: ``broker_timeout`` plus a minute,
    #: at most the broker's default ``transaction.max.timeout.ms`` (15 min). See
    #: :attr:`transaction_timeout_ms`
    transaction_timeout_setting_ms: int | None = None
    #: liveness: a worker with records to read that has processed no batch and committed
    #: nothing for this long is wedged (``/health`` answers 503)
    wedged_after_ms: int = 300_000
    #: how long the worker may take to stop after SIGTERM or SIGINT (final commit, leaving the
    #: group, closing the stores); past it the process exits 1 at once (state is rebuilt from
    #: the changelog, uncommitted transactions abort). Pods' terminationGracePeriodSeconds
    #: must be longer.
    shutdown_timeout_ms: int = 30_000
    #: state changed since the last commit (the write-back cache); reaching it commits early
    state_cache_mb: int = 64
    #: records fetched and not yet processed, over all assigned partitions
    fetch_buffer_mb: int = 32
    #: RocksDB write buffers and block caches, over all of the worker's table partitions
    store_memory_mb: int = 256
    #: the HTTP API's bearer tokens (:mod:`streams.api.api_auth`); unset: the API is open
    api_tokens_file: Path | None = None
    #: whether ``/metrics`` needs a token with the ``admin`` scope
    api_protect_metrics: bool = False
    #: serve the API over TLS with this certificate chain and key (PEM files)
    api_tls_cert: Path | None = None
    api_tls_key: Path | None = None
    #: the CA bundle (PEM) a worker verifies the other workers' certificates with when it
    #: forwards a request; unset: ``api_tls_cert`` itself (every worker serves one certificate,
    #: self-signed or not, that names every worker's host)
    api_tls_ca: Path | None = None
    #: live subscriptions one worker serves at once; beyond it, 503 with Retry-After
    api_max_subscribers: int = 200
    #: the largest ingest request body (bytes); beyond it, 413
    api_ingest_max_bytes: int = 10 * 1024 * 1024
    #: records per second one token may ingest (a token bucket of one second's worth); beyond
    #: it, 429 with Retry-After
    api_ingest_rate: float = 10_000.0
    #: the HTTP API's connection limits (:class:`streams.api.http_server.ConnectionLimits`): how
    #: long a request's head and body may take to arrive, how long a connection may stay idle,
    #: and how many connections one worker holds
    api_head_timeout_ms: int = 10_000
    api_body_timeout_ms: int = 30_000
    api_idle_timeout_ms: int = 60_000
    api_max_connections: int = 1_024
    #: how every Kafka client authenticates (TLS, SASL; :mod:`streams.kafka.kafka_security`); its
    #: repr hides the password
    kafka: KafkaSecurity = PLAINTEXT
    #: ``logfmt`` (key=value) or ``json`` (one object per line), :mod:`streams.telemetry.logfmt`
    log_format: str = "logfmt"
    #: replicas of every topic the engine creates (changelogs, repartition, dead letters,
    #: outputs, late events); -1: the broker's ``default.replication.factor`` (KIP-733)
    replication_factor: int = -1
    #: ``min.insync.replicas`` of those topics; None: the broker's ``min.insync.replicas``
    min_insync_replicas: int | None = None

    @property
    def transaction_timeout_ms(self) -> int:
        """How long the broker lets a worker's transaction stay open before it aborts it and
        fences the producer (aiokafka's ``transaction_timeout_ms``), in milliseconds.

        A transaction open when the broker became unreachable must outlive every outage the
        worker rides out (``broker_timeout``): otherwise the broker, once back, aborts it and the
        worker's commit fails. Unset, it is ``broker_timeout`` plus one minute (the commit then
        goes through), at most 15 min, the broker's default ``transaction.max.timeout.ms``, which
        refuses a longer one. A worker that dies with a transaction open holds back
        ``read_committed`` readers of the partitions it wrote only until the partition's next
        owner starts its producer, which aborts it at once."""
        if self.transaction_timeout_setting_ms is not None:
            return self.transaction_timeout_setting_ms
        return min(self.broker_timeout_ms + 60_000, TRANSACTION_MAX_TIMEOUT_MS)

    @property
    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            head_timeout_s=self.api_head_timeout_ms / 1000,
            body_timeout_s=self.api_body_timeout_ms / 1000,
            idle_timeout_s=self.api_idle_timeout_ms / 1000,
            max_connections=self.api_max_connections,
        )

    @property
    def worker_name(self) -> str:
        """How log lines name this worker: its group instance id, else ``host:port``."""
        return self.group_instance_id or f"{self.web_host}:{self.web_port}"

    def internal_topic_config(self) -> dict[str, str]:
        """The topic configs every topic the engine creates gets (none: the broker's defaults)."""
        if self.min_insync_replicas is None:
            return {}
        return {"min.insync.replicas": str(self.min_insync_replicas)}

    def __post_init__(self) -> None:
        if self.processing_guarantee not in GUARANTEES:
            raise ValueError(
                f"processing guarantee {self.processing_guarantee!r}; allowed: {', '.join(GUARANTEES)}"
            )
        if self.table_standby_replicas < 0:
            raise ValueError(f"table_standby_replicas must be 0 or more, got {self.table_standby_replicas}")
        for name in ("state_cache_mb", "fetch_buffer_mb", "store_memory_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 MiB or more, got {getattr(self, name)}")
        if (self.api_tls_cert is None) != (self.api_tls_key is None):
            raise ValueError("the API's TLS certificate and key go together: give both or neither")
        if self.api_tls_ca is not None and self.api_tls_cert is None:
            raise ValueError("the API's TLS CA is for workers that serve TLS: give a certificate and key too")
        if self.api_max_subscribers < 1 or self.api_ingest_max_bytes < 1 or self.api_ingest_rate <= 0:
            raise ValueError("api_max_subscribers, api_ingest_max_bytes and api_ingest_rate must be positive")
        if (
            self.api_max_connections < 1
            or min(self.api_head_timeout_ms, self.api_body_timeout_ms, self.api_idle_timeout_ms) < 100
        ):
            raise ValueError("api_max_connections must be positive, and the API's timeouts 100 ms or more")
        if self.transaction_timeout_ms <= self.commit_interval_ms:
            raise ValueError(
                f"transaction_timeout ({self.transaction_timeout_ms} ms) must be longer than "
                f"commit_interval ({self.commit_interval_ms} ms): every transaction lasts a commit interval"
            )
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log format {self.log_format!r}; allowed: {', '.join(LOG_FORMATS)}")
        if self.replication_factor == 0 or self.replication_factor < -1:
            raise ValueError(
                f"replication_factor must be 1 or more, or -1 for the broker's default, "
                f"got {self.replication_factor}"
            )
        if self.min_insync_replicas is not None and self.min_insync_replicas < 1:
            raise ValueError(f"min_insync_replicas must be 1 or more, got {self.min_insync_replicas}")
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor > 0:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) above replication_factor "
                f"({self.replication_factor}): no write with acks=all could ever succeed"
            )
        if self.group_instance_id == "":
            raise ValueError("group_instance_id must not be empty (leave it unset instead)")
        if self.shutdown_timeout_ms < 1_000:
            raise ValueError(f"shutdown_timeout must be at least 1s, got {self.shutdown_timeout_ms} ms")
        if self.wedged_after_ms < 1_000:
            raise ValueError(f"wedged_after must be at least 1s, got {self.wedged_after_ms} ms")
        if self.session_timeout_ms < 6_000:
            raise ValueError(
                f"session_timeout must be at least 6s (the broker's minimum), "
                f"got {self.session_timeout_ms} ms"
            )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        s = cls()
        return replace(
            s,
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", s.bootstrap_servers),
            data_dir=Path(env.get("CONTINUST_DATA_DIR", s.data_dir)),
            web_host=env.get("CONTINUST_WEB_HOST", s.web_host),
            web_port=int(env.get("CONTINUST_WEB_PORT", s.web_port)),
            web_bind=env.get("CONTINUST_WEB_BIND") or None,
            processing_guarantee=env.get("CONTINUST_PROCESSING_GUARANTEE", s.processing_guarantee),
            commit_interval_ms=parse_duration(env.get("CONTINUST_COMMIT_INTERVAL", s.commit_interval_ms)),
            table_standby_replicas=int(env.get("CONTINUST_TABLE_STANDBY_REPLICAS", s.table_standby_replicas)),
            session_timeout_ms=parse_duration(env.get("CONTINUST_SESSION_TIMEOUT", s.session_timeout_ms)),
            group_instance_id=env.get("CONTINUST_GROUP_INSTANCE_ID") or None,
            broker_timeout_ms=parse_duration(env.get("CONTINUST_BROKER_TIMEOUT", s.broker_timeout_ms)),
            transaction_timeout_setting_ms=_duration(env.get("CONTINUST_TRANSACTION_TIMEOUT")),
            wedged_after_ms=parse_duration(env.get("CONTINUST_WEDGED_AFTER", s.wedged_after_ms)),
            shutdown_timeout_ms=parse_duration(env.get("CONTINUST_SHUTDOWN_TIMEOUT", s.shutdown_timeout_ms)),
            state_cache_mb=int(env.get("CONTINUST_STATE_CACHE_MB", s.state_cache_mb)),
            fetch_buffer_mb=int(env.get("CONTINUST_FETCH_BUFFER_MB", s.fetch_buffer_mb)),
            store_memory_mb=int(env.get("CONTINUST_STORE_MEMORY_MB", s.store_memory_mb)),
            api_tokens_file=_path(env.get("CONTINUST_API_TOKENS_FILE")),
            api_protect_metrics=env.get("CONTINUST_API_PROTECT_METRICS", "").lower() in ("1", "true", "yes"),
            api_tls_cert=_path(env.get("CONTINUST_API_TLS_CERT")),
            api_tls_key=_path(env.get("CONTINUST_API_TLS_KEY")),
            api_tls_ca=_path(env.get("CONTINUST_API_TLS_CA")),
            api_max_subscribers=int(env.get("CONTINUST_API_MAX_SUBSCRIBERS", s.api_max_subscribers)),
            api_ingest_max_bytes=int(env.get("CONTINUST_API_INGEST_MAX_BYTES", s.api_ingest_max_bytes)),
            api_ingest_rate=float(env.get("CONTINUST_API_INGEST_RATE", s.api_ingest_rate)),
            api_head_timeout_ms=parse_duration(env.get("CONTINUST_API_HEAD_TIMEOUT", s.api_head_timeout_ms)),
            api_body_timeout_ms=parse_duration(env.get("CONTINUST_API_BODY_TIMEOUT", s.api_body_timeout_ms)),
            api_idle_timeout_ms=parse_duration(env.get("CONTINUST_API_IDLE_TIMEOUT", s.api_idle_timeout_ms)),
            api_max_connections=int(env.get("CONTINUST_API_MAX_CONNECTIONS", s.api_max_connections)),
            kafka=KafkaSecurity.from_env(env),
            log_format=env.get("CONTINUST_LOG_FORMAT") or s.log_format,
            replication_factor=int(env.get("CONTINUST_REPLICATION_FACTOR") or s.replication_factor),
            min_insync_replicas=_int(env.get("CONTINUST_MIN_INSYNC_REPLICAS")),
        )

    def with_pipeline(self, pipeline: Pipeline) -> Settings:
        """These settings with the pipeline file's; raises :class:`PipelineError` when the
        Kafka security settings of the file and the environment do not fit together."""
        app, api = pipeline.app, pipeline.api
        return replace(
            self,
            app_id=app.id,
            processing_guarantee=app.processing_guarantee or self.processing_guarantee,
            commit_interval_ms=app.commit_interval_ms or self.commit_interval_ms,
            max_future_ms=app.max_future_ms if app.max_future_ms is not None else self.max_future_ms,
            table_standby_replicas=(
                app.table_standby_replicas
                if app.table_standby_replicas is not None
                else self.table_standby_replicas
            ),
            session_timeout_ms=app.session_timeout_ms or self.session_timeout_ms,
            broker_timeout_ms=app.broker_timeout_ms or self.broker_timeout_ms,
            transaction_timeout_setting_ms=app.transaction_timeout_ms or self.transaction_timeout_setting_ms,
            wedged_after_ms=app.wedged_after_ms or self.wedged_after_ms,
            state_cache_mb=app.state_cache_mb or self.state_cache_mb,
            fetch_buffer_mb=app.fetch_buffer_mb or self.fetch_buffer_mb,
            store_memory_mb=app.store_memory_mb or self.store_memory_mb,
            api_tokens_file=_path(api.tokens_file) or self.api_tokens_file,
            api_protect_metrics=(
                api.protect_metrics if api.protect_metrics is not None else self.api_protect_metrics
            ),
            api_tls_cert=_path(api.tls_cert) or self.api_tls_cert,
            api_tls_key=_path(api.tls_key) or self.api_tls_key,
            api_tls_ca=_path(api.tls_ca) or self.api_tls_ca,
            api_max_subscribers=api.max_subscribers or self.api_max_subscribers,
            api_ingest_max_bytes=api.ingest_max_bytes or self.api_ingest_max_bytes,
            api_ingest_rate=api.ingest_rate or self.api_ingest_rate,
            api_head_timeout_ms=api.head_timeout_ms or self.api_head_timeout_ms,
            api_body_timeout_ms=api.body_timeout_ms or self.api_body_timeout_ms,
            api_idle_timeout_ms=api.idle_timeout_ms or self.api_idle_timeout_ms,
            api_max_connections=api.max_connections or self.api_max_connections,
            kafka=_kafka_security(self.kafka, pipeline),
            log_format=app.log_format or self.log_format,
            replication_factor=app.replication_factor or self.replication_factor,
            min_insync_replicas=app.min_insync_replicas or self.min_insync_replicas,
        )


def _kafka_security(env: KafkaSecurity, pipeline: Pipeline) -> KafkaSecurity:
    """The environment's Kafka security settings with the ``[kafka]`` table's in their place,
    checked (the password file, when the table names one, is read here)."""
    spec = pipeline.kafka
    try:
        password = read_secret(Path(spec.sasl_password_file)) if spec.sasl_password_file else None
        return env.merged(
            {
                "protocol": spec.security_protocol,
                "ssl_cafile": _path(spec.ssl_cafile),
                "ssl_certfile": _path(spec.ssl_certfile),
                "ssl_keyfile": _path(spec.ssl_keyfile),
                "sasl_mechanism": spec.sasl_mechanism,
                "sasl_username": spec.sasl_username,
                "sasl_password": password,
            }
        ).check()
    except KafkaSecurityError as exc:
        raise PipelineError(pipeline.path, "[kafka] (or the KAFKA_* environment)", str(exc)) from None
