"""Server-sent events: the bytes a server writes read back as the same events by the parser a
client uses, whatever the data holds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.api.sse import SseEvent, comment_bytes, event_bytes, read_events


def test_an_event_is_name_id_data_lines_and_a_blank_line() -> None:
    assert event_bytes("record", '{"a":1}', "42") == b'event: record\nid: 42\ndata: {"a":1}\n\n'
    assert event_bytes("snapshot", "x") == b"event: snapshot\ndata: x\n\n"
    assert comment_bytes("heartbeat 1700000000000") == b": heartbeat 1700000000000\n"


def test_names_ids_and_comments_must_be_one_line() -> None:
    with pytest.raises(ValueError):
        event_bytes("a\nb", "x")
    with pytest.raises(ValueError):
        event_bytes("a", "x", "1\r2")
    with pytest.raises(ValueError):
        event_bytes("a", "x", "1\x002")
    with pytest.raises(ValueError):
        comment_bytes("a\nb")


def test_the_parser_reads_comments_multi_line_data_and_skips_an_unfinished_event() -> None:
    stream = (
        b": heartbeat 5\n"
        + event_bytes("snapshot", "one\ntwo")
        + b"data: no name\n\n"
        + event_bytes("record", "{}", "7")
        + b"event: cut\ndata: half"
    )
    lines = [*(line + "\n" for line in stream.decode().split("\n")[:-1]), "data: half"]
    assert list(read_events(lines)) == [
        "heartbeat 5",
        SseEvent("snapshot", "one\ntwo"),
        SseEvent("message", "no name"),
        SseEvent("record", "{}", "7"),
    ]


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), min_size=1),
            st.text(st.characters(blacklist_categories=["Cs"])),
            st.one_of(
                st.none(),
                st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00")),
            ),
        ),
        max_size=5,
    )
)
def test_written_events_read_back_the_same(events: list[tuple[str, str, str | None]]) -> None:
    """Any text UTF-8 can carry (no lone surrogate) is read back as it was written."""
    stream = b"".join(event_bytes(name, data, id_) for name, data, id_ in events).decode()
    lines = re.findall(r"[^\n]*\n", stream)  # as a client reads them: lines end at \n only
    expected = [
        SseEvent(name, data.replace("\r\n", "\n").replace("\r", "\n"), id_) for name, data, id_ in events
    ]
    assert list(read_events(lines)) == expected
