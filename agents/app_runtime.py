"""The continust runtime of one Faust app, as one object: :class:`AppRuntime`.

What the stages (:mod:`agents.merge`, :mod:`agents.windowed`), the sink (:mod:`agents.sink`) and
Faust's consumer and producer (:mod:`agents.transport`) share: the commit gate, the commit
sequence, the wedge rule, the topics whose records go to a batch handler, and the rule naming
the transactional producer of each input partition.

:func:`agents.application.build_app` builds it once per app (:meth:`AppRuntime.attach`) and hands
it to the stages and the sink. The classes Faust constructs itself (its consumer, its
transaction manager, the web and table managers) cannot be handed anything: they find it with
:func:`runtime_of`, the one place an app is mapped to its runtime.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from agents.commit_gate import BatchHandler, CommitGate
from agents.commit_order import CommitSequence
from agents.faust_compat import in_recovery, transaction_producer, transactional_id_for
from agents.liveness import Liveness


@dataclass(eq=False)
class AppRuntime:
    """The runtime of Faust app ``app``. ``batch_routes``: topic name -> the handler its records
    are delivered to a fetch at a time (:meth:`install_batch_handler`)."""

    app: Any
    liveness: Liveness = field(default_factory=Liveness)
    sequence: CommitSequence = field(default_factory=CommitSequence)
    batch_routes: dict[str, BatchHandler] = field(default_factory=dict)
    #: the transaction timeout of the transactional producers (``Settings.transaction_timeout_ms``)
    transaction_timeout_ms: int = 60_000
    gate: CommitGate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = CommitGate(on_progress=self.liveness.progressed)

    @classmethod
    def attach(cls, app: Any, liveness: Liveness | None = None) -> AppRuntime:
        """A new runtime for ``app``, which :func:`runtime_of` finds from now on. Raises
        ``ValueError`` when ``app`` has one already."""
        if app in _RUNTIMES:
            raise ValueError(f"app {app.conf.id!r} has a runtime already")
        runtime = cls(app) if liveness is None else cls(app, liveness)
        _RUNTIMES[app] = runtime
        return runtime

    def install_batch_handler(self, channel: Any, handler: BatchHandler) -> None:
        """Subscribe the app to the topics of ``channel`` and have the consumer hand their
        records to ``handler`` a fetch at a time, per partition and in offset order, through the
        gate (:meth:`agents.transport.Consumer.drain_messages`). No Faust stream or agent is
        involved: Faust's per-event path (a channel put, a stream step and an ack per record)
        costs more than the whole aggregation."""
        self.app.topics.add(channel)
        for topic in channel.topics:
            self.batch_routes[topic] = handler

    def writes_paused(self) -> bool:
        """Whether records written now would find no transaction: the app stops, rebalances
        or recovers (the last commit of a stop or a revocation starts no new transaction).
        What a stage writes on its own (progress reports, idle marks, idle closes) waits."""
        app = self.app
        return bool(app.should_stop or app.rebalancing or in_recovery(app))

    def transactional_id(self, tp: TP) -> str:
        """The transactional id of the producer of input partition ``tp`` (Faust's format, by
        the topic's group): the transaction that commits ``tp``'s offset and whatever was
        derived from its records."""
        group = self.app.assignor.group_for_topic(tp.topic)
        return transactional_id_for(self.app.conf.id, group, tp.partition)

    def producer_for(self, tp: TP) -> Any | None:
        """The running aiokafka transactional producer of input partition ``tp``, or ``None``
        (the partition is not assigned here, or its producer was stopped)."""
        return transaction_producer(self.app.producer, self.transactional_id(tp))


_RUNTIMES: weakref.WeakKeyDictionary[Any, AppRuntime] = weakref.WeakKeyDictionary()


def runtime_of(app: Any) -> AppRuntime:
    """The runtime :meth:`AppRuntime.attach` made for ``app``. Raises ``LookupError`` for an
    app built without one."""
    runtime = _RUNTIMES.get(app)
    if runtime is None:
        raise LookupError(f"{app!r} has no continust runtime")
    return runtime
