"""When the windows of one table partition produce output records: one policy per ``emit`` mode.

The engine (:class:`~windows.partition.PartitionWindows`) owns the windows, the stream time and
the close schedule, and tells its policy what happened: an accepted event changed windows
(:meth:`EmitPolicy.changed`), stream time closed a window (:meth:`EmitPolicy.closed`), a commit
is about to happen (:meth:`EmitPolicy.at_commit`). The policy answers with the records due then.
A late event changes no window, so no policy hears of it.

Every record counts one more ``version`` of its window, so a consumer sees 1..n without a gap;
a session that absorbs earlier sessions continues from the largest of their versions.

* :class:`EmitChange` (``"change"``): one record per changed window, as the event happens.
* :class:`EmitUpdate` (``"update"``): coalesces like Kafka Streams' record cache. A changed
  window is only marked; at the commit it gets one record with its latest value, in the order
  the windows first changed since the last commit. A window changed and deleted between two
  commits still gets its record.
* :class:`EmitFinal` (``"final"``): one record (``version`` 1) per window when stream time
  closes it (>= end + grace), and never for a window that has not closed.

A record's ``replaces`` lists the absorbed sessions a consumer has seen: under ``"change"``
every absorbed session; under ``"update"`` the ones with a record at an earlier commit (a
session created and absorbed between two commits was never emitted); under ``"final"`` none,
since only closed sessions are emitted and a closed session never merges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from windows.emission import Emission
from windows.keyed_state import Outcome, WindowState
from windows.spec import Window
from windows.table import WindowedAggregate


class EmitPolicy(Protocol):
    def changed(self, key: str, outcome: Outcome) -> Sequence[Emission]:
        """An accepted (not late) event changed the key's windows as ``outcome`` says: the
        windows it updated (start order) and, for a session, the earlier sessions it merged into
        the updated one. The records due now."""
        ...

    def closed(self, key: str, window: WindowState) -> Emission | None:
        """Stream time closed the key's ``window``: its record, when one is due now."""
        ...

    @property
    def pending(self) -> int:
        """Windows whose record waits for the next commit."""
        ...

    def at_commit(self) -> tuple[Emission, ...]:
        """The records due at a commit; the engine saves the version each one counts."""
        ...


def count_record(
    table: WindowedAggregate, key: str, window: WindowState, replaces: tuple[Window, ...] = ()
) -> Emission:
    """Count one more record of the key's ``window`` in its ``version`` and return that record,
    with the window's value and cause now."""
    window.version += 1
    return Emission(
        key, window.start, window.end, window.version, table.value(window), replaces, window.cause
    )


class EmitChange:
    """``emit = "change"``: every change is a record, as it happens."""

    def __init__(self, table: WindowedAggregate) -> None:
        self.table = table

    def changed(self, key: str, outcome: Outcome) -> Sequence[Emission]:
        table, replaces = self.table, outcome.replaced
        return [count_record(table, key, w, replaces) for w in outcome.changed]

    def closed(self, key: str, window: WindowState) -> Emission | None:
        return None

    @property
    def pending(self) -> int:
        return 0

    def at_commit(self) -> tuple[Emission, ...]:
        return ()


class EmitUpdate:
    """``emit = "update"``: one record per window changed since the last commit, at the commit."""

    def __init__(self, table: WindowedAggregate) -> None:
        self.table = table
        # the windows changed since the last commit, in first-change order: their latest state
        # and the sessions their record replaces
        self._changed: dict[tuple[str, Window], tuple[WindowState, tuple[Window, ...]]] = {}

    def changed(self, key: str, outcome: Outcome) -> Sequence[Emission]:
        marked = self._changed
        carried: list[Window] = []
        for window in outcome.replaced:
            pending = marked.pop((key, window), None)
            if pending is not None:
                carried.extend(pending[1])
                if pending[0].version > 0:
                    carried.append(window)
            else:
                carried.append(window)  # emitted at an earlier commit: the consumer holds it
        replaces = tuple(carried)
        for w in outcome.changed:
            entry = (key, Window(w.start, w.end))
            prior = marked.get(entry)
            marked[entry] = (w, replaces if prior is None else prior[1] + replaces)
        return ()

    def closed(self, key: str, window: WindowState) -> Emission | None:
        return None

    @property
    def pending(self) -> int:
        return len(self._changed)

    def at_commit(self) -> tuple[Emission, ...]:
        if not self._changed:
            return ()
        table = self.table
        emissions = tuple(
            count_record(table, key, state, replaces)
            for (key, _window), (state, replaces) in self._changed.items()
        )
        self._changed.clear()
        return emissions


class EmitFinal:
    """``emit = "final"``: one record per window, when stream time closes it."""

    def __init__(self, table: WindowedAggregate) -> None:
        self.table = table

    def changed(self, key: str, outcome: Outcome) -> Sequence[Emission]:
        return ()

    def closed(self, key: str, window: WindowState) -> Emission | None:
        return count_record(self.table, key, window)

    @property
    def pending(self) -> int:
        return 0

    def at_commit(self) -> tuple[Emission, ...]:
        return ()


POLICIES: dict[str, Callable[[WindowedAggregate], EmitPolicy]] = {
    "update": EmitUpdate,
    "change": EmitChange,
    "final": EmitFinal,
}
"""The policy class of each emit mode of :data:`windows.table.EMITS`."""


def emit_policy(table: WindowedAggregate) -> EmitPolicy:
    """A new policy for the table's ``emit`` mode (validated by :class:`WindowedAggregate`)."""
    return POLICIES[table.emit](table)
