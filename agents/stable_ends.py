"""Changelog end offsets for recovery that are not behind a committed transaction's markers.

Under ``exactly_once`` a table partition's store on disk names the offset of the commit marker
of the last transaction it applied (:mod:`agents.table_store`): that transaction committed
before the state was written. Faust's recovery reads the changelog's end offset (for a
``read_committed`` consumer, the last stable offset) and refuses a store that names an offset
past it (``ConsistencyError``, the worker stops). The last stable offset can lag a committed
transaction for a moment: the coordinator acknowledges a commit, then writes its markers, and a
broker restarted between the two writes them once it has loaded its transaction log again. A
worker recovering then (seen after a broker outage) stopped on state that was right.

:func:`ends_reaching` re-reads the end offsets of such partitions until they pass what the store
names, for a bounded time; a store still ahead after that is a real inconsistency, left to
Faust's check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from faust.types import TP

from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.recovery")

#: how long recovery waits for a changelog's last stable offset to pass its store's offset
WAIT_S = 30.0
RETRY_S = 0.2


def behind(ends: Mapping[TP, int], persisted: Mapping[TP, int]) -> list[TP]:
    """The partitions whose end offset does not pass the offset their store names (Faust's
    recovery takes ``end - 1`` as the last offset and refuses a store past it)."""
    return sorted(tp for tp, offset in persisted.items() if tp in ends and ends[tp] <= offset)


async def ends_reaching(
    ends: Mapping[TP, int],
    persisted: Mapping[TP, int],
    reread: Callable[[list[TP]], Awaitable[Mapping[TP, int]]],
    wait_s: float = WAIT_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[TP, int]:
    """``ends``, with the end offsets of the partitions :func:`behind` ``persisted`` read again
    (``reread``) every :data:`RETRY_S` until none is behind or ``wait_s`` has passed; the
    latest read of each is returned either way."""
    current = dict(ends)
    waiting = behind(current, persisted)
    if not waiting:
        return current
    deadline = clock() + wait_s
    log.warning(
        logfmt(
            "recovery.waiting_for_stable_offsets",
            partitions=",".join(f"{tp.topic}:{tp.partition}" for tp in waiting),
            wait_s=wait_s,
        )
    )
    while waiting and clock() < deadline:
        await sleep(RETRY_S)
        current.update(await reread(waiting))
        waiting = behind(current, persisted)
    if waiting:
        log.warning(
            logfmt(
                "recovery.stable_offsets_behind",
                partitions=",".join(
                    f"{tp.topic}:{tp.partition}={current[tp]}<={persisted[tp]}" for tp in waiting
                ),
            )
        )
    return current
