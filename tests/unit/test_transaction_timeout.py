"""The transaction timeout of the worker's transactional producers
(:attr:`streams.settings.Settings.transaction_timeout_ms`): a transaction open when the broker
became unreachable must outlive every outage the worker rides out (``broker_timeout``), or
the broker aborts it once back and fences the worker. The broker test is
``test_a_transaction_open_through_an_outage_commits_when_the_broker_is_back``."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from agents.app_runtime import AppRuntime
from streams.plan.errors import PipelineError
from streams.plan.pipeline import parse_pipeline
from streams.settings import TRANSACTION_MAX_TIMEOUT_MS, Settings
from tests.unit.test_settings import PIPELINE


def test_by_default_the_transaction_outlives_the_broker_timeout_by_a_minute() -> None:
    assert Settings().transaction_timeout_ms == Settings().broker_timeout_ms + 60_000 == 360_000
    assert Settings(broker_timeout_ms=10_000).transaction_timeout_ms == 70_000
    # never past what a broker accepts by default (it refuses a longer one)
    assert Settings(broker_timeout_ms=30 * 60_000).transaction_timeout_ms == TRANSACTION_MAX_TIMEOUT_MS


def test_an_explicit_timeout_from_the_environment_or_the_pipeline_file() -> None:
    from_env = Settings.from_env({"CONTINUST_TRANSACTION_TIMEOUT": "20m"})
    assert from_env.transaction_timeout_ms == 1_200_000
    app = {**PIPELINE["app"], "transaction_timeout": "90s"}
    assert from_env.with_pipeline(parse_pipeline({**PIPELINE, "app": app})).transaction_timeout_ms == 90_000
    with pytest.raises(PipelineError, match="at least 1s"):
        parse_pipeline({**PIPELINE, "app": {**app, "transaction_timeout": "10ms"}})
    with pytest.raises(ValueError, match="longer than commit_interval"):
        Settings(transaction_timeout_setting_ms=5_000, commit_interval_ms=5_000)


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_the_transactional_producers_get_the_workers_timeout(tmp_path: Path, guarantee: str) -> None:
    app = faust.App(
        f"txn-timeout-{guarantee}",
        broker="continust://127.0.0.1:1",
        processing_guarantee=guarantee,
        datadir=str(tmp_path),
        autodiscover=False,
        web_enabled=False,
    )
    app.in_worker = True  # as a worker's app is (Faust's transactions are a worker's)
    AppRuntime.attach(app).transaction_timeout_ms = 360_000
    extra = app.producer.settings_extra()
    if guarantee == "exactly_once":
        # Faust's own settings stay (idempotence, acks from every replica)
        assert extra == {"acks": "all", "enable_idempotence": True, "transaction_timeout_ms": 360_000}
    else:
        assert "transaction_timeout_ms" not in extra
