"""The commit gate: a transaction never commits in the middle of an event.

Faust commits on a timer, concurrently with the agents. An event whose records were already
sent but whose offset was not yet acknowledged would have its records committed without its
offset; after a crash or a stop, it is processed again and its records appear twice. Faust also
cancels agents mid-event on shutdown, with the same effect.

Every event is therefore processed and acknowledged as one step under a lock, shielded from
cancellation, and the consumer takes the same lock for the whole commit (offsets computed and
transaction committed), so a commit sees each event either not started or sent and acknowledged.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from faust.types import EventT


class CommitGate:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def process(self, event: EventT, handler: Callable[[EventT], Awaitable[None]]) -> None:
        """Run ``handler(event)`` and acknowledge the event, as one step no commit interleaves
        with and no cancellation interrupts."""
        message = event.message
        name = f"continust.event:{message.topic}:{message.partition}:{message.offset}"
        task = asyncio.ensure_future(self._process(event, handler))
        task.set_name(name)
        await asyncio.shield(task)

    async def _process(self, event: EventT, handler: Callable[[EventT], Awaitable[None]]) -> None:
        async with self._lock:
            await handler(event)
            event.ack()

    @asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        """Hold off event processing (for the duration of a commit)."""
        async with self._lock:
            yield


def install_gated_agent(
    app: Any, channel: Any, name: str, handler: Callable[[EventT], Awaitable[None]]
) -> None:
    """Register an agent on ``channel`` that hands each event to ``handler`` through the app's
    gate and acknowledges it itself (the stream's automatic acks are off)."""

    async def agent(stream: Any) -> None:
        gate = gate_for(app)
        async for event in stream.noack().events():
            await gate.process(event, handler)

    agent.__qualname__ = agent.__name__ = name.rsplit(".", 1)[-1]
    app.agent(channel, name=name)(agent)


_GATES: weakref.WeakKeyDictionary[Any, CommitGate] = weakref.WeakKeyDictionary()


def gate_for(app: Any) -> CommitGate:
    """The one gate of a Faust app, shared by its agents and its consumer."""
    gate = _GATES.get(app)
    if gate is None:
        gate = _GATES[app] = CommitGate()
    return gate
