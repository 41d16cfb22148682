from pathlib import Path

import pytest

from streams.api.http_server import ConnectionLimits
from streams.plan.pipeline import parse_pipeline
from streams.settings import Settings

PIPELINE = {
    "app": {"id": "shop", "commit_interval": "250ms", "processing_guarantee": "at_least_once"},
    "source": [{"name": "clicks", "topics": ["a"], "key": "user"}],
    "table": [
        {
            "name": "t",
            "source": "clicks",
            "window": {"type": "tumbling", "size": "1m"},
            "aggregate": {"n": "count()"},
        }
    ],
}


def test_defaults_then_environment_then_pipeline_file() -> None:
    assert Settings.from_env({}) == Settings()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker:9093",
        "CONTINUST_DATA_DIR": "/state",
        "CONTINUST_WEB_PORT": "7000",
        "CONTINUST_PROCESSING_GUARANTEE": "exactly_once",
        "CONTINUST_COMMIT_INTERVAL": "2s",
    }
    from_env = Settings.from_env(env)
    assert (from_env.bootstrap_servers, from_env.data_dir, from_env.web_port) == (
        "broker:9093",
        Path("/state"),
        7000,
    )
    assert (from_env.processing_guarantee, from_env.commit_interval_ms) == ("exactly_once", 2000)
    merged = from_env.with_pipeline(parse_pipeline(PIPELINE))
    assert merged.app_id == "shop"
    assert (merged.processing_guarantee, merged.commit_interval_ms) == ("at_least_once", 250)
    assert merged.max_future_ms == 3_600_000 and merged.bootstrap_servers == "broker:9093"


def test_an_unknown_guarantee_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly_once, at_least_once"):
        Settings.from_env({"CONTINUST_PROCESSING_GUARANTEE": "best_effort"})


def test_standby_replicas_and_session_timeout() -> None:
    from_env = Settings.from_env(
        {"CONTINUST_TABLE_STANDBY_REPLICAS": "2", "CONTINUST_SESSION_TIMEOUT": "10s"}
    )
    assert (from_env.table_standby_replicas, from_env.session_timeout_ms) == (2, 10_000)
    pipeline = {**PIPELINE, "app": {"id": "shop", "table_standby_replicas": 1, "session_timeout": "6s"}}
    merged = from_env.with_pipeline(parse_pipeline(pipeline))
    assert (merged.table_standby_replicas, merged.session_timeout_ms) == (1, 6_000)
    pipeline = {**PIPELINE, "app": {"id": "shop", "table_standby_replicas": 0}}
    assert from_env.with_pipeline(parse_pipeline(pipeline)).table_standby_replicas == 0
    with pytest.raises(ValueError, match="at least 6s"):
        Settings.from_env({"CONTINUST_SESSION_TIMEOUT": "1s"})


def test_static_membership_broker_timeout_and_memory_limits() -> None:
    assert Settings().group_instance_id is None
    from_env = Settings.from_env(
        {
            "CONTINUST_GROUP_INSTANCE_ID": "worker-0",
            "CONTINUST_BROKER_TIMEOUT": "2m",
            "CONTINUST_STATE_CACHE_MB": "8",
            "CONTINUST_FETCH_BUFFER_MB": "4",
            "CONTINUST_STORE_MEMORY_MB": "32",
        }
    )
    assert (from_env.group_instance_id, from_env.broker_timeout_ms) == ("worker-0", 120_000)
    assert (from_env.state_cache_mb, from_env.fetch_buffer_mb, from_env.store_memory_mb) == (8, 4, 32)
    app = {"id": "shop", "broker_timeout": "30s", "state_cache_mb": 2, "store_memory_mb": 16}
    merged = from_env.with_pipeline(parse_pipeline({**PIPELINE, "app": app}))
    assert (merged.broker_timeout_ms, merged.state_cache_mb, merged.fetch_buffer_mb) == (30_000, 2, 4)
    assert (merged.store_memory_mb, merged.group_instance_id) == (16, "worker-0")
    assert Settings.from_env({"CONTINUST_GROUP_INSTANCE_ID": ""}).group_instance_id is None
    with pytest.raises(ValueError, match="state_cache_mb"):
        Settings(state_cache_mb=0)


def test_the_tls_ca_peers_verify_with_comes_from_the_environment_or_the_api_table() -> None:
    tls = {"CONTINUST_API_TLS_CERT": "/tls/cert.pem", "CONTINUST_API_TLS_KEY": "/tls/key.pem"}
    assert Settings.from_env(tls).api_tls_ca is None
    from_env = Settings.from_env({**tls, "CONTINUST_API_TLS_CA": "/tls/ca.pem"})
    assert from_env.api_tls_ca == Path("/tls/ca.pem")
    api = {"tls_cert": "c.pem", "tls_key": "k.pem", "tls_ca": "ca.pem"}
    merged = from_env.with_pipeline(parse_pipeline({**PIPELINE, "api": api}))
    assert (merged.api_tls_cert, merged.api_tls_ca) == (Path("c.pem"), Path("ca.pem"))
    with pytest.raises(ValueError, match="TLS CA is for workers that serve TLS"):
        Settings.from_env({"CONTINUST_API_TLS_CA": "/tls/ca.pem"})
    # the certificate may come from the environment and the CA from the pipeline file
    only_ca = parse_pipeline({**PIPELINE, "api": {"tls_ca": "ca.pem"}})
    assert Settings.from_env(tls).with_pipeline(only_ca).api_tls_ca == Path("ca.pem")
    with pytest.raises(ValueError, match="TLS CA is for workers that serve TLS"):
        Settings().with_pipeline(only_ca)


def test_wedged_after_from_the_environment_and_the_app_table() -> None:
    assert Settings().wedged_after_ms == 300_000
    from_env = Settings.from_env({"CONTINUST_WEDGED_AFTER": "90s"})
    assert from_env.wedged_after_ms == 90_000
    merged = from_env.with_pipeline(parse_pipeline({**PIPELINE, "app": {"id": "shop", "wedged_after": "2m"}}))
    assert merged.wedged_after_ms == 120_000
    with pytest.raises(ValueError, match="wedged_after"):
        Settings.from_env({"CONTINUST_WEDGED_AFTER": "10ms"})


def test_the_connection_limits_come_from_the_environment_then_the_api_table() -> None:
    assert Settings().connection_limits == ConnectionLimits(10.0, 30.0, 60.0, 1_024)
    env = {"CONTINUST_API_HEAD_TIMEOUT": "2s", "CONTINUST_API_MAX_CONNECTIONS": "50"}
    from_env = Settings.from_env(env)
    assert (from_env.connection_limits.head_timeout_s, from_env.connection_limits.max_connections) == (
        2.0,
        50,
    )
    api = {"head_timeout": "500ms", "body_timeout": "5s", "idle_timeout": "20s", "max_connections": 10}
    merged = from_env.with_pipeline(parse_pipeline({**PIPELINE, "api": api}))
    assert merged.connection_limits == ConnectionLimits(0.5, 5.0, 20.0, 10)
    with pytest.raises(ValueError, match="at least 100ms"):
        parse_pipeline({**PIPELINE, "api": {"head_timeout": "10ms"}})
    with pytest.raises(ValueError, match="max_connections"):
        parse_pipeline({**PIPELINE, "api": {"max_connections": 0}})
    with pytest.raises(ValueError, match="api_max_connections"):
        Settings.from_env({"CONTINUST_API_MAX_CONNECTIONS": "0"})
