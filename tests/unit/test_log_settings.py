"""The settings of logging and of internal topics' replication: defaults, environment, pipeline
file (which wins), and the values refused."""

import pytest

from streams.plan.errors import PipelineError
from streams.plan.pipeline import parse_pipeline
from streams.settings import Settings

PIPELINE = {
    "app": {"id": "shop"},
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


def _with_app(**app: object) -> dict[str, object]:
    return {**PIPELINE, "app": {"id": "shop", **app}}


def test_defaults_are_logfmt_and_the_brokers_own_replication() -> None:
    s = Settings.from_env({})
    assert s.log_format == "logfmt"
    assert s.replication_factor == -1  # CreateTopics: the broker's default.replication.factor
    assert s.min_insync_replicas is None
    assert s.internal_topic_config() == {}  # no topic config: the broker's min.insync.replicas


def test_the_environment_sets_them() -> None:
    env = {
        "CONTINUST_LOG_FORMAT": "json",
        "CONTINUST_REPLICATION_FACTOR": "3",
        "CONTINUST_MIN_INSYNC_REPLICAS": "2",
    }
    s = Settings.from_env(env)
    assert (s.log_format, s.replication_factor, s.min_insync_replicas) == ("json", 3, 2)
    assert s.internal_topic_config() == {"min.insync.replicas": "2"}


def test_the_pipeline_file_wins_over_the_environment() -> None:
    env = {"CONTINUST_LOG_FORMAT": "logfmt", "CONTINUST_REPLICATION_FACTOR": "2"}
    pipeline = parse_pipeline(_with_app(log_format="json", replication_factor=3, min_insync_replicas=2))
    s = Settings.from_env(env).with_pipeline(pipeline)
    assert (s.log_format, s.replication_factor, s.min_insync_replicas) == ("json", 3, 2)


def test_a_pipeline_file_without_them_keeps_the_environments() -> None:
    env = {"CONTINUST_LOG_FORMAT": "json", "CONTINUST_MIN_INSYNC_REPLICAS": "2"}
    s = Settings.from_env(env).with_pipeline(parse_pipeline(PIPELINE))
    assert (s.log_format, s.replication_factor, s.min_insync_replicas) == ("json", -1, 2)


@pytest.mark.parametrize(
    ("app", "problem"),
    [
        ({"log_format": "xml"}, "log_format"),
        ({"replication_factor": 0}, "replication_factor"),
        ({"replication_factor": -1}, "replication_factor"),
        ({"replication_factor": True}, "replication_factor"),
        ({"min_insync_replicas": 0}, "min_insync_replicas"),
        ({"min_insync_replicas": "2"}, "min_insync_replicas"),
    ],
)
def test_the_pipeline_file_refuses_bad_values(app: dict[str, object], problem: str) -> None:
    with pytest.raises(PipelineError, match=problem):
        parse_pipeline(_with_app(**app))


@pytest.mark.parametrize(
    "env",
    [
        {"CONTINUST_LOG_FORMAT": "xml"},
        {"CONTINUST_REPLICATION_FACTOR": "0"},
        {"CONTINUST_REPLICATION_FACTOR": "-2"},
        {"CONTINUST_MIN_INSYNC_REPLICAS": "0"},
        {"CONTINUST_REPLICATION_FACTOR": "2", "CONTINUST_MIN_INSYNC_REPLICAS": "3"},
    ],
)
def test_the_settings_refuse_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Settings.from_env(env)


def test_min_insync_above_the_brokers_default_replication_is_left_to_the_broker() -> None:
    # with replication left to the broker, continust cannot know the number of replicas; the
    # broker refuses writes (NotEnoughReplicas) if the operator asks for more than it has
    assert Settings.from_env({"CONTINUST_MIN_INSYNC_REPLICAS": "3"}).min_insync_replicas == 3


def test_the_worker_is_named_by_its_group_instance_id_else_host_and_port() -> None:
    assert Settings(web_host="10.0.0.7", web_port=6066).worker_name == "10.0.0.7:6066"
    assert Settings(group_instance_id="shop-1", web_port=6066).worker_name == "shop-1"


def test_a_topic_left_to_the_broker_asks_for_replication_factor_minus_one() -> None:
    from streams.kafka.topic_admin import BROKER_DEFAULT, new_topic

    left = new_topic("t", 4, BROKER_DEFAULT, {})
    assert (left.num_partitions, left.replication_factor, left.replica_assignments) == (4, -1, {})
    chosen = new_topic("t", 4, 3, {"min.insync.replicas": "2"})
    assert (chosen.replication_factor, chosen.topic_configs) == (3, {"min.insync.replicas": "2"})
