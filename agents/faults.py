"""Named fault points: a worker can be told to signal itself at a chosen point of its processing,
so that failure tests land their faults exactly where they mean to, whatever the machine's speed.

The plan is read once at start from ``CONTINUST_FAULT`` (inert when unset)::

    CONTINUST_FAULT=<point>[@<n>][:<action>][;<point>[@<n>][:<action>]...]

``point`` is one of :class:`FaultPoint`; ``n`` (default 1) is which time the worker reaches the
point, counted from its start (for a later fault of a sequence, from when the one before it
fired); ``action`` is ``kill`` (SIGKILL, the default), ``term`` (SIGTERM: a clean stop that
begins at that point) or ``hold``: at a point the worker awaits (:data:`HOLD_POINTS`), it stops
right there, writes the marker and waits until a rebalance revokes its partitions (a test starts
or stops another worker to cause one), then goes on; then the next fault of the sequence is
armed. A hold reached while a revocation is in progress does not count.

Just before it signals itself (or holds, and again once released) the worker writes a marker
(``<data dir>/fault-fired``, or the path in ``CONTINUST_FAULT_MARKER``): one JSON object with
the point, the signal, ``n`` and what the worker was doing (partitions and offsets), written
and fsynced before the signal, so a test can check where the fault landed. For a hold it also
says which hold this is (``held``, from 1), whether it ended (``released``), and the point of
each hold ended so far: ``released_points`` (by a revocation, in order) and
``timed_out_points`` (none came within :data:`HOLD_LIMIT_S`). One group change often makes
several rebalances in a row, so a later hold may be released before a test looks.
A worker that reaches the point fewer than ``n`` times never fires.

The points, in the order a record meets them:

* ``batch.started``: under the commit gate, a fetched batch is about to be processed;
* ``batch.written``: its records are written (handed to the producers), not acknowledged yet;
* ``batch.processed``: a fetched batch was processed and acknowledged, its outputs handed to
  the producer, and no commit has covered it yet (under the commit gate, so none can);
* ``commit.held_back`` to ``commit.after``: a commit is about to run that step of
  :class:`agents.commit_order.Step` (one point per step, named after it);
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

import asyncio
import contextlib
import enum
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.telemetry.logfmt import EVERY_LINE, logfmt

log = logging.getLogger("continust.faults")

FAULT_ENV = "CONTINUST_FAULT"
#: hold and release lines are never rate-limited (:class:`streams.telemetry.logfmt.RepeatedMessageFilter`)
EVERY = {EVERY_LINE: True}
MARKER_ENV = "CONTINUST_FAULT_MARKER"
MARKER_NAME = "fault-fired"


class FaultPoint(enum.Enum):
    BATCH_STARTED = "batch.started"
    BATCH_WRITTEN = "batch.written"
    BATCH_PROCESSED = "batch.processed"
    COMMIT_HELD_BACK = "commit.held_back"
    COMMIT_OUTPUTS = "commit.outputs"
    COMMIT_STATE = "commit.state"
    COMMIT_SEND_BUFFER = "commit.send_buffer"
    COMMIT_OFFSETS = "commit.offsets"
    COMMIT_WRITES_WITHOUT_OFFSETS = "commit.writes_without_offsets"
    COMMIT_AFTER = "commit.after"
    COMMIT_IN_TRANSACTION = "commit.in_transaction"
    STATE_APPLY = "state.apply"
    COMMIT_DONE = "commit.done"
    RECOVERY = "recovery"


SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM}
HOLD = "hold"
#: the points a worker reaches in a coroutine (:meth:`Faults.pass_point`), where it can hold
HOLD_POINTS = frozenset(
    {
        FaultPoint.BATCH_STARTED,
        FaultPoint.BATCH_WRITTEN,
        FaultPoint.BATCH_PROCESSED,
        FaultPoint.COMMIT_HELD_BACK,
        FaultPoint.COMMIT_OUTPUTS,
        FaultPoint.COMMIT_STATE,
        FaultPoint.COMMIT_SEND_BUFFER,
        FaultPoint.COMMIT_OFFSETS,
        FaultPoint.COMMIT_WRITES_WITHOUT_OFFSETS,
        FaultPoint.COMMIT_AFTER,
        FaultPoint.COMMIT_IN_TRANSACTION,
    }
)
#: how long a hold waits for a revocation before it goes on regardless (logged)
HOLD_LIMIT_S = 120.0


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
        if signal_name not in SIGNALS and signal_name != HOLD:
            raise ValueError(f"{FAULT_ENV}={text!r}: the action must be one of {', '.join(SIGNALS)}, {HOLD}")
        if signal_name == HOLD and point not in HOLD_POINTS:
            holds = ", ".join(sorted(p.value for p in HOLD_POINTS))
            raise ValueError(f"{FAULT_ENV}={text!r}: {name} cannot hold; points that can: {holds}")
        if count and (not count.isdigit() or int(count) == 0):
            raise ValueError(f"{FAULT_ENV}={text!r}: the occurrence after '@' must be 1 or more")
        return cls(point, int(count or 1), signal_name, marker)

    @classmethod
    def from_env(cls, env: Mapping[str, str], data_dir: Path) -> FaultPlan | None:
        """The first fault of ``CONTINUST_FAULT`` (see :func:`plans_from_env`)."""
        plans = plans_from_env(env, data_dir)
        return plans[0] if plans else None


def plans_from_env(env: Mapping[str, str], data_dir: Path) -> list[FaultPlan]:
    """The faults of ``CONTINUST_FAULT``, in order (empty when unset); only the last may end
    the process (every other one holds)."""
    text = env.get(FAULT_ENV, "").strip()
    if not text:
        return []
    marker = Path(env.get(MARKER_ENV) or data_dir / MARKER_NAME)
    plans = [FaultPlan.parse(part, marker) for part in text.split(";") if part.strip()]
    if any(plan.signal_name != HOLD for plan in plans[:-1]):
        raise ValueError(f"{FAULT_ENV}={text!r}: only the last fault of a sequence may kill or stop")
    return plans


@dataclass
class Faults:
    """The worker's fault plan and how often each point was reached. With no plan,
    :meth:`reached` returns at once."""

    plan: FaultPlan | None = None
    counts: dict[FaultPoint, int] = field(default_factory=dict)
    #: the faults armed after :attr:`plan`, in order
    later: list[FaultPlan] = field(default_factory=list)
    #: revocations begun since the start, and whether one is in progress
    revocations: int = 0
    revoking: bool = False
    #: holds ended so far (by a revocation, or after :data:`HOLD_LIMIT_S` without one)
    holds: int = 0
    #: the point of each hold a revocation released, in order, and of each that timed out
    released_points: list[str] = field(default_factory=list)
    timed_out_points: list[str] = field(default_factory=list)
    _revoked: asyncio.Event | None = field(default=None, repr=False)

    def reached(self, point: FaultPoint, **details: Any) -> None:
        """The worker is at ``point``; fire if the plan says so. ``details`` (JSON-serialisable)
        describe the moment and go into the marker."""
        plan = self._due(point)
        if plan is None:
            return
        if plan.signal_name == HOLD:  # a hold needs an awaiting caller: pass_point
            raise RuntimeError(f"{point.value} cannot hold")
        self._write_marker(plan, point, details)
        log.warning(
            logfmt("fault.fire", point=point.value, occurrence=plan.occurrence, signal=plan.signal_name)
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), SIGNALS[plan.signal_name])

    async def pass_point(self, point: FaultPoint, **details: Any) -> None:
        """:meth:`reached`, at a point the worker awaits: a ``hold`` waits here until a
        revocation begins (:meth:`revocation_began`), then arms the next fault."""
        plan = self.plan
        if plan is None or plan.point is not point:
            return
        if plan.signal_name != HOLD:
            self.reached(point, **details)
            return
        if self.revoking or self._due(point) is None:
            return
        before = self.revocations
        self._write_marker(
            plan, point, {**details, **self._history(), "held": self.holds + 1, "released": False}
        )
        log.warning(logfmt("fault.hold", point=point.value, occurrence=plan.occurrence), extra=EVERY)
        revoked_event = self._revoked = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(revoked_event.wait(), HOLD_LIMIT_S)
        self._revoked = None
        self.holds += 1
        revoked = self.revocations > before
        (self.released_points if revoked else self.timed_out_points).append(point.value)
        self._write_marker(
            plan, point, {**details, **self._history(), "held": self.holds, "released": revoked}
        )
        log.warning(logfmt("fault.release", point=point.value, by_revocation=revoked), extra=EVERY)
        self.plan = self.later.pop(0) if self.later else None
        self.counts.clear()

    def _history(self) -> dict[str, list[str]]:
        """For the marker: the holds ended so far (a test tells from it which hold a
        revocation released, even when another rebalance of the same group change released
        the next one before the test looked)."""
        return {
            "released_points": list(self.released_points),
            "timed_out_points": list(self.timed_out_points),
        }

    def revocation_began(self) -> None:
        """A rebalance revokes the worker's partitions: releases a hold."""
        self.revocations += 1
        self.revoking = True
        if self._revoked is not None:
            self._revoked.set()

    def revocation_ended(self) -> None:
        self.revoking = False

    def _due(self, point: FaultPoint) -> FaultPlan | None:
        """The plan, when this is the time it fires at ``point``."""
        plan = self.plan
        if plan is None or plan.point is not point:
            return None
        n = self.counts[point] = self.counts.get(point, 0) + 1
        return plan if n == plan.occurrence else None

    @staticmethod
    def _write_marker(plan: FaultPlan, point: FaultPoint, details: Mapping[str, Any]) -> None:
        record = {"point": point.value, "occurrence": plan.occurrence, "signal": plan.signal_name}
        record.update({"pid": os.getpid(), **details})
        plan.marker.parent.mkdir(parents=True, exist_ok=True)
        written = plan.marker.with_suffix(".writing")
        with written.open("wb") as f:
            f.write(orjson.dumps(record) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        written.replace(plan.marker)


FAULTS = Faults()
"""The process's faults: armed once at start by :func:`arm_from_env`."""


def arm_from_env(env: Mapping[str, str], data_dir: Path) -> FaultPlan | None:
    """Read ``CONTINUST_FAULT`` once (at worker start) and arm :data:`FAULTS`."""
    plans = plans_from_env(env, data_dir)
    FAULTS.plan = plans[0] if plans else None
    FAULTS.later = plans[1:]
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
