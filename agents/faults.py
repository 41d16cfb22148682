"""Named fault points: a worker can be told to signal itself at a chosen point of its processing,
so that failure tests land their faults exactly where they mean to, whatever the machine's speed.

The plan is read once at start from ``CONTINUST_FAULT`` (inert when unset)::

    CONTINUST_FAULT=<point>[@<n>][:<signal>]

``point`` is one of :class:`FaultPoint`; ``n`` (default 1) is which time the worker reaches the
point, counted from its start; ``signal`` is ``kill`` (SIGKILL, the default) or ``term``
(SIGTERM: a clean stop that begins at that point). Just before it signals itself the worker
writes a marker (``<data dir>/fault-fired``, or the path in ``CONTINUST_FAULT_MARKER``): one
JSON object with the point, the signal, ``n`` and what the worker was doing (partitions and
offsets), written and fsynced before the signal, so a test can check where the fault landed.
A worker that reaches the point fewer than ``n`` times never fires.

The points, in the order a record meets them:

* ``batch.processed``: a fetched batch was processed and acknowledged, its outputs handed to
  the producer, and no commit has covered it yet (under the commit gate, so none can);
* ``commit.in_transaction``: inside the transaction, after the state and outputs were flushed
  and before the commit request (the offsets to commit are in the marker);
* ``state.apply``: a commit carrying table state committed, and RocksDB does not hold that
  state yet (the next start restores it from the changelog);
* ``commit.done``: the transaction that carried the offsets committed, before the next batch
  is processed (still under the gate);
* ``recovery``: a table's changelog record was read while the worker restores its tables,
  before it processes any input.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.logfmt import logfmt

log = logging.getLogger("continust.faults")

FAULT_ENV = "CONTINUST_FAULT"
MARKER_ENV = "CONTINUST_FAULT_MARKER"
MARKER_NAME = "fault-fired"


class FaultPoint(enum.Enum):
    BATCH_PROCESSED = "batch.processed"
    COMMIT_IN_TRANSACTION = "commit.in_transaction"
    STATE_APPLY = "state.apply"
    COMMIT_DONE = "commit.done"
    RECOVERY = "recovery"


SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM}


@dataclass(frozen=True)
class FaultPlan:
    """Signal ``signal_name`` to this process the ``occurrence``-th time ``point`` is reached,
    after writing ``marker``."""

    point: FaultPoint
    occurrence: int
    signal_name: str
    marker: Path

    @classmethod
    def parse(cls, text: str, marker: Path) -> FaultPlan:
        """Parse ``<point>[@<n>][:<signal>]``; raises ``ValueError`` naming what is wrong."""
        spec, _, signal_name = text.strip().partition(":")
        signal_name = signal_name or "kill"
        name, _, count = spec.partition("@")
        points = ", ".join(p.value for p in FaultPoint)
        try:
            point = FaultPoint(name)
        except ValueError:
            raise ValueError(f"{FAULT_ENV}={text!r}: unknown fault point {name!r}; known: {points}") from None
        if signal_name not in SIGNALS:
            raise ValueError(f"{FAULT_ENV}={text!r}: signal must be one of {', '.join(SIGNALS)}")
        if count and (not count.isdigit() or int(count) == 0):
            raise ValueError(f"{FAULT_ENV}={text!r}: the occurrence after '@' must be 1 or more")
        return cls(point, int(count or 1), signal_name, marker)

    @classmethod
    def from_env(cls, env: Mapping[str, str], data_dir: Path) -> FaultPlan | None:
        text = env.get(FAULT_ENV, "").strip()
        if not text:
            return None
        return cls.parse(text, Path(env.get(MARKER_ENV) or data_dir / MARKER_NAME))


@dataclass
class Faults:
    """The worker's fault plan and how often each point was reached. With no plan,
    :meth:`reached` returns at once."""

    plan: FaultPlan | None = None
    counts: dict[FaultPoint, int] = field(default_factory=dict)

    def reached(self, point: FaultPoint, **details: Any) -> None:
        """The worker is at ``point``; fire if the plan says so. ``details`` (JSON-serialisable)
        describe the moment and go into the marker."""
        plan = self.plan
        if plan is None or plan.point is not point:
            return
        n = self.counts[point] = self.counts.get(point, 0) + 1
        if n != plan.occurrence:
            return
        record = {"point": point.value, "occurrence": n, "signal": plan.signal_name, "pid": os.getpid()}
        record.update(details)
        plan.marker.parent.mkdir(parents=True, exist_ok=True)
        with plan.marker.open("wb") as f:
            f.write(orjson.dumps(record) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        log.warning(logfmt("fault.fire", point=point.value, occurrence=n, signal=plan.signal_name))
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), SIGNALS[plan.signal_name])


FAULTS = Faults()
"""The process's faults: armed once at start by :func:`arm_from_env`."""


def arm_from_env(env: Mapping[str, str], data_dir: Path) -> FaultPlan | None:
    """Read ``CONTINUST_FAULT`` once (at worker start) and arm :data:`FAULTS`."""
    FAULTS.plan = FaultPlan.from_env(env, data_dir)
    FAULTS.counts.clear()
    if FAULTS.plan is not None:
        plan = FAULTS.plan
        log.warning(
            logfmt(
                "fault.armed",
                point=plan.point.value,
                occurrence=plan.occurrence,
                signal=plan.signal_name,
                marker=plan.marker,
            )
        )
    return FAULTS.plan


def offsets_detail(offsets: Mapping[Any, int]) -> dict[str, int]:
    """``{"topic:partition": offset}`` for a marker."""
    return {f"{tp.topic}:{tp.partition}": int(o) for tp, o in sorted(offsets.items())}
