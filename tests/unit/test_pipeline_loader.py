from pathlib import Path

import pytest

from streams.plan.errors import PipelineError
from streams.plan.pipeline import load_pipeline
from windows.aggregates import Count, Max, Sum
from windows.spec import SessionWindows, SlidingWindows, TumblingWindows

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipelines.toml"

VALID = """
[app]
id = "shop"

[[source]]
name = "clicks"
topics = ["web-clicks", "app-clicks"]
key = "user"
timestamp = "ts"

[[table]]
name = "per_user"
source = "clicks"
window = { type = "tumbling", size = "1m", grace = "10s", retention = "1h" }
aggregate = { clicks = "count()", spent = "sum(amount)" }
output = "per-user"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipelines.toml"
    path.write_text(text)
    return path


def test_the_example_pipeline_loads() -> None:
    pipeline = load_pipeline(EXAMPLE)
    table = pipeline.tables[0]
    assert pipeline.app.id == "shop-analytics"
    assert pipeline.sources[0].topics == ("web-clicks", "app-clicks")
    assert table.window == TumblingWindows(size_ms=60_000, grace_ms=10_000, retention_ms=3_600_000)
    assert table.aggregate_names == ("clicks", "spent", "biggest")
    assert table.aggregations == (Count(), Sum(field="amount"), Max(field="amount"))
    assert table.emit == "update" and table.output == "clicks-per-user"
    sessions = pipeline.tables[1]
    assert sessions.window == SessionWindows(gap_ms=30_000, grace_ms=10_000, retention_ms=3_600_000)
    assert sessions.emit == "final" and sessions.output == "sessions-per-user"


def test_a_source_partitioned_by_key(tmp_path: Path) -> None:
    text = VALID.replace('key = "user"\n', 'key = "user"\npartitioned_by_key = true\n')
    assert load_pipeline(write(tmp_path, text)).sources[0].partitioned_by_key is True


def test_idle_after(tmp_path: Path) -> None:
    assert load_pipeline(write(tmp_path, VALID)).sources[0].idle_after_ms == 5_000
    text = VALID.replace('key = "user"\n', 'key = "user"\nidle_after = "250ms"\n')
    assert load_pipeline(write(tmp_path, text)).sources[0].idle_after_ms == 250
    text = VALID.replace('key = "user"\n', 'key = "user"\nidle_after = "0s"\n')
    assert load_pipeline(write(tmp_path, text)).sources[0].idle_after_ms == 0


def test_defaults(tmp_path: Path) -> None:
    text = VALID.replace('timestamp = "ts"\n', "").replace(', grace = "10s", retention = "1h"', "")
    pipeline = load_pipeline(write(tmp_path, text))
    assert pipeline.sources[0].timestamp is None
    assert pipeline.sources[0].partitioned_by_key is False
    assert pipeline.tables[0].window == TumblingWindows(size_ms=60_000, grace_ms=0, retention_ms=0)


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        ('id = "shop"', "", "[app]", ["`id` is required"]),
        ('id = "shop"', 'id = "a shop"', "[app]", ["letters, digits"]),
        (
            'key = "user"',
            'key = "user"\ncolour = "red"',
            "source 'clicks'",
            ["unknown setting 'colour'", "allowed"],
        ),
        ('topics = ["web-clicks", "app-clicks"]', "topics = []", "source 'clicks'", ["non-empty list"]),
        ('source = "clicks"', 'source = "views"', "table 'per_user'", ["'views'", "known: clicks"]),
        ('size = "1m"', 'size = "1 minute"', "table 'per_user' window", ["`size`", "unit"]),
        ('size = "1m"', 'size = "0s"', "table 'per_user' window", ["positive"]),
        (
            'type = "tumbling"',
            'type = "hopping"',
            "table 'per_user' window",
            ["allowed: tumbling, sliding, session"],
        ),
        ('type = "tumbling"', 'type = "sliding"', "table 'per_user' window", ["`slide` is required"]),
        ('type = "tumbling"', 'type = "session"', "table 'per_user' window", ["unknown setting 'size'"]),
        ('size = "1m"', 'size = "1m", gap = "1s"', "table 'per_user' window", ["unknown setting 'gap'"]),
        ('"sum(amount)"', '"median(amount)"', "table 'per_user' aggregate", ["`spent`", "allowed: count()"]),
        (
            'output = "per-user"',
            'output = "per-user"\nemit = "sometimes"',
            "table 'per_user'",
            ["allowed: update, change, final"],
        ),
        ('output = "per-user"', 'output = "per-user"\nidle_timeout = "0s"', "table 'per_user'", ["positive"]),
        ("[app]", '[app]\nprocessing_guarantee = "maybe"', "[app]", ["exactly_once, at_least_once"]),
        ('key = "user"', 'key = "user"\npartitioned_by_key = "yes"', "source 'clicks'", ["true or false"]),
        ('key = "user"', 'key = "user"\nidle_after = "-1s"', "source 'clicks'", ["`idle_after`"]),
        ("[app]", "[app]\ntable_standby_replicas = -1", "[app]", ["0 or more"]),
        ("[app]", '[app]\nsession_timeout = "1s"', "[app]", ["at least 6s"]),
        ("[app]", '[app]\nbroker_timeout = "10ms"', "[app]", ["`broker_timeout`", "at least 1s"]),
        ("[app]", '[app]\nwedged_after = "10ms"', "[app]", ["`wedged_after`", "at least 1s"]),
        ("[app]", "[app]\nstate_cache_mb = 0", "[app]", ["`state_cache_mb`", "MiB"]),
        ("[app]", '[app]\nfetch_buffer_mb = "big"', "[app]", ["`fetch_buffer_mb`", "1 or more"]),
    ],
)
def test_errors_name_the_file_the_place_the_problem_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, where: str, words: list[str]
) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(PipelineError) as err:
        load_pipeline(path)
    message = str(err.value)
    assert message.startswith(str(path))
    assert err.value.where == where
    for word in words:
        assert word in message


def test_optional_source_topics(tmp_path: Path) -> None:
    text = VALID.replace(
        'timestamp = "ts"\n',
        'timestamp = "ts"\nlate_topic = "late-clicks"\ndead_letter_topic = "bad-clicks"\n',
    )
    source = load_pipeline(write(tmp_path, text)).sources[0]
    assert (source.late_topic, source.dead_letter_topic) == ("late-clicks", "bad-clicks")
    with pytest.raises(PipelineError, match="letters, digits"):
        load_pipeline(write(tmp_path, text.replace('"late-clicks"', '"late clicks"')))


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="does not exist"):
        load_pipeline(tmp_path / "nope.toml")
    with pytest.raises(PipelineError, match="not valid TOML"):
        load_pipeline(write(tmp_path, "[app\nid="))


def test_duplicate_table_names_are_rejected(tmp_path: Path) -> None:
    table = VALID[VALID.index("[[table]]") :]
    with pytest.raises(PipelineError, match="used more than once"):
        load_pipeline(write(tmp_path, VALID + table))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (
            '{ type = "sliding", size = "1m", slide = "10s", grace = "5s" }',
            SlidingWindows(size_ms=60_000, slide_ms=10_000, grace_ms=5_000),
        ),
        (
            '{ type = "session", gap = "30s", grace = "5s", retention = "10m" }',
            SessionWindows(gap_ms=30_000, grace_ms=5_000, retention_ms=600_000),
        ),
    ],
)
def test_sliding_and_session_windows(tmp_path: Path, window: str, expected: object) -> None:
    old = '{ type = "tumbling", size = "1m", grace = "10s", retention = "1h" }'
    text = VALID.replace(old, window).replace('output = "per-user"', 'output = "per-user"\nemit = "final"')
    table = load_pipeline(write(tmp_path, text)).tables[0]
    assert table.window == expected
    assert table.emit == "final" and table.idle_timeout_ms is None


def test_slide_larger_than_size_is_rejected(tmp_path: Path) -> None:
    old = 'type = "tumbling", size = "1m"'
    text = VALID.replace(old, 'type = "sliding", size = "1m", slide = "2m"')
    with pytest.raises(PipelineError, match="at most `size`"):
        load_pipeline(write(tmp_path, text))


def test_idle_timeout(tmp_path: Path) -> None:
    text = VALID.replace('output = "per-user"', 'output = "per-user"\nidle_timeout = "30s"')
    assert load_pipeline(write(tmp_path, text)).tables[0].idle_timeout_ms == 30_000
