"""A transaction's records are acknowledged before its offsets are added: adding offsets while a
produce of the same transaction is in flight fails the broker's transaction verification, which
aiokafka sees as NotEnoughReplicasError retries (agents/transport.py, docs/exactly-once.md)."""

import asyncio
from typing import Any

from agents.app_runtime import AppRuntime
from agents.transport import Producer


class RecordingProducer:
    """Stands for aiokafka's transactional producer; records the calls in order."""

    def __init__(self, tid: str, calls: list[tuple[str, str]]) -> None:
        self.tid, self.calls = tid, calls

    async def flush(self) -> None:
        # acknowledgements arrive later than the call: the flush ends only once the event loop
        # has run the callback that acknowledges them
        acknowledged = asyncio.Event()
        asyncio.get_running_loop().call_soon(acknowledged.set)
        await acknowledged.wait()
        self.calls.append((self.tid, "flush"))

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        self.calls.append((self.tid, "send_offsets"))

    async def commit_transaction(self) -> None:
        self.calls.append((self.tid, "commit"))

    async def begin_transaction(self) -> None:
        self.calls.append((self.tid, "begin"))


class FakeApp:
    """Only a key for the app's runtime (its commit sequence)."""


def test_each_transaction_is_flushed_before_its_offsets_are_added() -> None:
    calls: list[tuple[str, str]] = []
    producer: Any = object.__new__(Producer)
    producer.app = FakeApp()
    AppRuntime.attach(producer.app)
    # Faust's registry of transactional producers and their locks (faust_compat.transaction_producer)
    producer._transaction_producers = {tid: RecordingProducer(tid, calls) for tid in ("a", "b")}
    producer._trn_locks = {tid: asyncio.Lock() for tid in ("a", "b")}

    asyncio.run(producer.commit_transactions({"a": {}, "b": {}}, "group"))

    for tid in ("a", "b"):
        steps = [step for t, step in calls if t == tid]
        assert steps == ["flush", "send_offsets", "commit", "begin"], (tid, steps)
