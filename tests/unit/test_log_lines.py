"""Log lines: logfmt and JSON carry the same fields (app, worker, event and its fields), and
repeated warnings are rate-limited per event with a fake clock."""

import logging
import sys

import orjson
import pytest

from streams.cli.console_filter import ConsoleFilter, line_shown
from streams.telemetry.logfmt import (
    EVERY_LINE,
    JsonFormatter,
    LogfmtFormatter,
    RepeatedMessageFilter,
    formatter,
    logfmt,
    parse_logfmt,
)


def _record(name: str, level: int, msg: object, *args: object) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, args or None, None)
    record.created, record.msecs = 1_795_000_000.25, 250.0
    return record


def test_logfmt_lines_name_the_app_and_the_worker() -> None:
    line = LogfmtFormatter(app="shop", worker="shop-1").format(
        _record("continust.table", logging.WARNING, logfmt("table.late", key="a b", n=3))
    )
    assert line.startswith("ts=2026-11-18T11:06:40.250Z ")
    assert line.endswith(
        'Z level=warning logger=continust.table app=shop worker=shop-1 event=table.late key="a b" n=3'
    )


def test_json_lines_hold_the_same_fields_with_their_types() -> None:
    record = _record("continust.table", logging.WARNING, logfmt("table.late", key="a b", n=3, ok=True))
    text = LogfmtFormatter(app="shop", worker="10.0.0.7:6066").format(record)
    obj = orjson.loads(JsonFormatter(app="shop", worker="10.0.0.7:6066").format(record))
    assert list(obj) == ["ts", "level", "logger", "app", "worker", "event", "key", "n", "ok"]
    assert obj["n"] == 3 and obj["ok"] is True and obj["key"] == "a b"
    assert {k: str(v) for k, v in obj.items() if k != "ok"} == {
        k: v for k, v in parse_logfmt(text).items() if k != "ok"
    }


def test_library_messages_are_msg_and_exceptions_exc_in_both_formats() -> None:
    record = _record("aiokafka", logging.ERROR, "Unable to connect to %s", "node 1")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    text = formatter("logfmt", app="shop").format(record)
    fields = parse_logfmt(text)
    assert fields["msg"] == "Unable to connect to node 1"
    assert "worker" not in fields and fields["app"] == "shop"
    assert "RuntimeError: boom" in fields["exc"]
    obj = orjson.loads(formatter("json", app="shop").format(record))
    assert obj["msg"] == "Unable to connect to node 1" and "RuntimeError: boom" in obj["exc"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        formatter("xml")


def test_parse_logfmt_undoes_the_quoting() -> None:
    line = logfmt("e", text='say "hi"\nthen=go', path="/a b", empty="")
    assert parse_logfmt(line) == {"event": "e", "text": 'say "hi"\nthen=go', "path": "/a b", "empty": ""}


def test_own_warnings_repeated_within_the_interval_are_counted_per_event() -> None:
    now = [0.0]
    repeats = RepeatedMessageFilter(interval_s=10, clock=lambda: now[0])
    first = _record("continust.broker", logging.WARNING, logfmt("broker.unreachable", for_s=1))
    assert repeats.filter(first)
    now[0] = 4
    # the same event, other fields: a repeat
    assert not repeats.filter(
        _record("continust.broker", logging.WARNING, logfmt("broker.unreachable", for_s=5))
    )
    assert not repeats.filter(
        _record("continust.broker", logging.WARNING, logfmt("broker.unreachable", for_s=6))
    )
    # another event, or the same event at another level: not a repeat
    assert repeats.filter(_record("continust.broker", logging.WARNING, logfmt("broker.slow")))
    assert repeats.filter(_record("continust.broker", logging.ERROR, logfmt("broker.unreachable")))
    # info lines and lines logged as every-line are never dropped
    for _ in range(3):
        assert repeats.filter(_record("continust.generator", logging.INFO, logfmt("generator.progress")))
        every = _record("continust.worker", logging.WARNING, logfmt("worker.task"))
        setattr(every, EVERY_LINE, True)
        assert repeats.filter(every)
    now[0] = 9.9
    assert not repeats.filter(_record("continust.broker", logging.WARNING, logfmt("broker.unreachable")))
    now[0] = 10
    again = _record("continust.broker", logging.WARNING, logfmt("broker.unreachable", for_s=10))
    assert repeats.filter(again)
    fields = parse_logfmt(LogfmtFormatter().format(again))
    assert (fields["event"], fields["for_s"], fields["repeated"], fields["within_s"]) == (
        "broker.unreachable",
        "10",
        "3",
        "10",
    )
    assert orjson.loads(JsonFormatter().format(again))["repeated"] == 3
    now[0] = 25
    assert repeats.filter(_record("continust.broker", logging.WARNING, logfmt("broker.unreachable")))


def test_a_library_message_still_counts_by_its_text() -> None:
    now = [0.0]
    repeats = RepeatedMessageFilter(interval_s=10, clock=lambda: now[0])
    assert repeats.filter(_record("aiokafka", logging.WARNING, "Got error produce response: %s", "X"))
    assert not repeats.filter(_record("aiokafka", logging.WARNING, "Got error produce response: %s", "X"))
    assert repeats.filter(_record("aiokafka", logging.WARNING, "Got error produce response: %s", "Y"))
    now[0] = 11
    again = _record("aiokafka", logging.WARNING, "Got error produce response: %s", "X")
    assert repeats.filter(again)
    assert again.getMessage() == "Got error produce response: X (repeated=1 in 10s)"


@pytest.mark.parametrize(
    ("logger", "level", "shown"),
    [
        ("continust.demo", logging.INFO, True),
        ("continust", logging.INFO, True),
        ("continust.table", logging.DEBUG, False),
        ("faust.worker", logging.INFO, False),
        ("aiokafka.producer.sender", logging.WARNING, True),
        ("mode.services", logging.ERROR, True),
        ("continustx", logging.INFO, False),
        ("agents.transport", logging.INFO, False),
    ],
)
def test_the_console_shows_own_events_and_the_runtimes_warnings(logger: str, level: int, shown: bool) -> None:
    record = _record(logger, level, logfmt("x") if logger.startswith("continust") else "text")
    assert ConsoleFilter().filter(record) is shown
    assert line_shown(LogfmtFormatter(app="a", worker="w").format(record)) is shown
    assert line_shown(JsonFormatter(app="a", worker="w").format(record)) is shown


def test_a_line_that_is_no_log_line_is_shown() -> None:
    assert line_shown("Traceback (most recent call last):\n")
    assert line_shown("{not json\n")


def test_an_event_field_named_like_a_line_field_is_kept_apart() -> None:
    record = _record("continust.table", logging.DEBUG, logfmt("event.late", ts=123, app="shop", key="k"))
    fields = parse_logfmt(LogfmtFormatter(app="shop", worker="w").format(record))
    assert fields["ts"].startswith("2026-") and fields["event_ts"] == "123"
    assert fields["app"] == "shop" and "event_app" not in fields and fields["key"] == "k"
    obj = orjson.loads(JsonFormatter(app="shop", worker="w").format(record))
    assert obj["event_ts"] == 123
