"""Which of this worker's active partitions hold their whole committed state while the worker
as a whole is rebalancing or restoring.

From the start of a rebalance until Faust's recovery of the new assignment is complete the
worker is *restoring* (:meth:`agents.table_queries.PipelineReads.restoring`): a partition just
assigned holds none or part of its state. A partition it held, restored, before the rebalance and
still holds is whole all along: the revocation committed its state (the commit carries every
processed record, :meth:`agents.transport.Consumer.on_partitions_revoked`), nothing processes
it until the worker resumes, and its RocksDB stays open (Faust closes only the databases of
partitions that leave). The query routes answer such a *kept* partition from its committed
state throughout the rebalance, instead of 503.

:class:`RestoredPartitions` keeps the set: the active partitions, taken whenever the worker is
settled (no rebalance, no recovery; checked every :data:`CHECK_INTERVAL_S` and at each query),
narrowed at each assignment to the partitions the new assignment still gives this worker. A
partition that left and came back is not in it again before the worker is settled: its local
state may be older than what its other owner committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import faust
from faust.assignor import PartitionAssignor
from faust.types import TP

from agents.faust_compat import in_recovery

#: how often the set is taken while the worker is settled (seconds)
CHECK_INTERVAL_S = 1.0


class RestoredPartitions:
    """The active partitions (topic partitions of Faust's assignment) known whole; see the
    module's documentation. ``settled``: whether the worker is neither rebalancing nor
    restoring (by default, read from ``app``)."""

    def __init__(self, app: faust.App, settled: Callable[[], bool] | None = None) -> None:
        self.app = app
        self._settled = settled or (lambda: not (in_recovery(app) or app.rebalancing))
        self._restored: frozenset[TP] = frozenset()

    def install(self) -> None:
        """Take the set on a timer, and narrow it at each assignment."""
        self.app.timer(CHECK_INTERVAL_S, name="continust.restored_partitions")(self._check)
        self.app.on_partitions_assigned.connect(cast(Any, self._assigned))

    def settled(self) -> bool:
        """Whether the worker is settled; when it is, the set is taken now."""
        settled = self._settled()
        if settled:
            self._restored = frozenset(self._actives())
        return settled

    def holds(self, tp: TP) -> bool:
        """Whether ``tp`` is active here and whole: the worker is settled, or ``tp`` was
        restored here before the rebalance in progress and is still assigned here."""
        if self.settled():
            return tp in self._restored
        return tp in self._restored and tp in self._actives()

    def assigned(self, actives: set[TP]) -> None:
        """A new assignment: only what it still gives this worker stays whole."""
        self._restored = self._restored & frozenset(actives)

    def _actives(self) -> set[TP]:
        return cast(PartitionAssignor, self.app.assignor).assigned_actives()

    async def _check(self) -> None:
        if not self.settled():
            self.assigned(self._actives())

    async def _assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.assigned(self._actives())
