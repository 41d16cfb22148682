"""What the metrics read from a running worker when they are scraped
(:class:`streams.telemetry.metrics.RuntimeState`): consumer lag, recovery left, state on disk.

* Consumer lag: per assigned partition, its last stable offset minus its fetch position, as the
  consumer's last fetch left them (:func:`agents.faust_compat.partition_state`); a partition
  whose position or last stable offset is not known yet is left out, and so are the changelog
  partitions of active table partitions (see :func:`consumer_lag`).
* Recovery: :func:`agents.faust_compat.recovery_remaining`.
* Ready: the rule of ``GET /ready`` (:func:`agents.readiness.readiness`).
* State bytes: the sizes of the files of each table's RocksDB partition databases under the
  data directory, summed per table; computed at most every ``state_bytes_every_ms`` (default
  10 s, on :attr:`WorkerState.clock`), the last answer served in between.

Nothing here raises for a worker that has not started its consumer or its tables: the answers
are empty then.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from agents.clock import WALL_CLOCK, Clock
from agents.faust_compat import consumer_thread, kafka_consumer, partition_state, recovery_remaining
from agents.readiness import readiness


def consumer_lag(app: faust.App) -> dict[TP, int]:
    """Records left to read of each assigned partition whose fetch state is known. The
    changelog partitions of the worker's active table partitions are left out: the worker
    writes them and reads them only to restore, with the consumer paused on them otherwise
    (their restore is ``continust_recovery_remaining_records``); standby changelog partitions
    count, since a standby reads them."""
    try:
        client = kafka_consumer(consumer_thread(app.consumer))  # type: ignore[arg-type]
    except (ConsumerNotStarted, AttributeError):
        return {}
    changelogs = app.tables.changelog_topics
    standbys = app.assignor.assigned_standbys()
    lag: dict[TP, int] = {}
    for tp in list(client.assignment()):
        if tp.topic in changelogs and TP(tp.topic, tp.partition) not in standbys:
            continue
        state = partition_state(client, tp)
        if state is None or state.position is None:
            continue
        lso = state.last_stable_offset
        end = lso if lso is not None and lso >= 0 else state.highwater
        if end is None or end < 0:
            continue
        lag[TP(tp.topic, tp.partition)] = max(0, end - state.position)
    return lag


def directory_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist; files that vanish
    while it is read, as RocksDB compacts, are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name), follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def table_bytes(store: Any) -> int:
    """Bytes on disk of every partition database of a Faust RocksDB store (``<basename>-<n>.db``
    directories under its ``path``)."""
    base = Path(store.path)
    prefix = f"{store.basename}-"
    if not base.is_dir():
        return 0
    return sum(
        directory_bytes(entry)
        for entry in base.iterdir()
        if entry.name.startswith(prefix) and entry.name.endswith(".db") and entry.is_dir()
    )


@dataclass
class WorkerState:
    """A worker's :class:`streams.telemetry.metrics.RuntimeState`. ``tables``: table name -> its Faust
    table (whose ``data`` is the RocksDB store); ``processed_topics``: the topics whose lag
    counts for the wedge rule (:meth:`processing_lag`)."""

    app: faust.App
    tables: Mapping[str, Any]
    processed_topics: Callable[[], set[str]] = set
    clock: Clock = WALL_CLOCK
    state_bytes_every_ms: int = 10_000
    _bytes: dict[str, int] = field(default_factory=dict)
    _bytes_at_ms: int | None = None

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        return {(tp.topic, tp.partition): lag for tp, lag in consumer_lag(self.app).items()}

    def processing_lag(self) -> int:
        """Records left to read over the assigned partitions of the processed topics."""
        topics = self.processed_topics()
        return sum(lag for tp, lag in consumer_lag(self.app).items() if tp.topic in topics)

    def recovery_remaining(self) -> dict[tuple[str, int], int]:
        remaining = recovery_remaining(self.app)
        return {(tp.topic, tp.partition): records for tp, records in remaining.items()}

    def ready(self) -> bool:
        return readiness(self.app).ready

    def state_bytes(self) -> dict[str, int]:
        now = self.clock.now_ms()
        if self._bytes_at_ms is None or now - self._bytes_at_ms >= self.state_bytes_every_ms:
            sizes = {}
            for name, table in self.tables.items():
                try:
                    sizes[name] = table_bytes(table.data)
                except (AttributeError, OSError):
                    sizes[name] = 0
            self._bytes, self._bytes_at_ms = sizes, now
        return dict(self._bytes)
