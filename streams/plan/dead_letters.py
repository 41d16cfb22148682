"""Dead letters: an input record that cannot be processed is written, value and key unchanged,
to the source's dead-letter topic, with headers saying why and where it came from. Late events
go, value unchanged, to the source's late topic when it names one."""

from __future__ import annotations

from dataclasses import dataclass

from streams.plan.causation import Cause, cause_headers

REASON = "continust-reason"
DETAIL = "continust-detail"
SOURCE = "continust-source"
TABLE = "continust-table"
TOPIC = "continust-topic"
PARTITION = "continust-partition"
OFFSET = "continust-offset"


LATE = "late"
EVENT_TIME = "continust-event-time"
STREAM_TIME = "continust-stream-time"


def late_event_headers(table: str, event_time_ms: int, stream_time_ms: int | None) -> list[tuple[str, bytes]]:
    """Headers of a late event written to the source's ``late_topic``: which table found it
    late, and the event time and partition stream time (epoch ms) that made it so."""
    return [
        (REASON, LATE.encode()),
        (TABLE, table.encode()),
        (EVENT_TIME, str(event_time_ms).encode()),
        (STREAM_TIME, str(stream_time_ms).encode()),
    ]


def dead_letter_topic(app_id: str, configured: str | None) -> str:
    """The source's ``dead_letter_topic``, or ``<app id>-dead-letters``."""
    return configured or f"{app_id}-dead-letters"


@dataclass(frozen=True)
class DeadLetter:
    """Why a record was rejected (``reason`` is a short code, ``detail`` the explanation) and
    where it was read from; ``table`` is empty when the source itself rejected it. ``cause``:
    the input record it came from (:mod:`streams.plan.causation`; for a record of the repartition
    topic, the source record behind it), written as the cause headers too."""

    reason: str
    detail: str
    source: str
    topic: str
    partition: int
    offset: int
    table: str = ""
    cause: Cause | None = None
    #: more headers saying why (:meth:`streams.plan.errors.InvalidEvent.headers`)
    extra: tuple[tuple[str, bytes], ...] = ()

    def headers(self) -> list[tuple[str, bytes]]:
        cause = self.cause or (self.topic, self.partition, self.offset, None, None)
        return [
            (REASON, self.reason.encode()),
            (DETAIL, self.detail.encode()),
            (SOURCE, self.source.encode()),
            (TABLE, self.table.encode()),
            (TOPIC, self.topic.encode()),
            (PARTITION, str(self.partition).encode()),
            (OFFSET, str(self.offset).encode()),
            *cause_headers(cause),
            *self.extra,
        ]
