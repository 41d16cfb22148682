from pathlib import Path

import pytest

from streams.pipeline import parse_pipeline
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
