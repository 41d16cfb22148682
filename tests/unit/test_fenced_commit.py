"""Step 5 of a commit fails when a transaction is fenced
(:meth:`agents.transport.TransactionManager.commit`): Faust's own commit caught
``ProducerFenced``, crashed the app and answered that it committed, so step 7 wrote the aborted
transaction's state to RocksDB. Here the producer's error reaches the commit sequence, which
stops before step 7; a commit that goes through still groups the offsets by transaction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka.errors import ProducerFenced
from faust.types import TP

from agents.app_runtime import AppRuntime
from agents.commit_order import AfterCommit, CommitOutcome, CommitRequest, CommitSequence
from agents.transport import NoTransactionProducer, TransactionManager


class App:
    """A stand-in for the Faust app: its id, topic group 0 for every topic, its crashes."""

    conf = SimpleNamespace(id="app")
    assignor = SimpleNamespace(group_for_topic=lambda t: 0)

    def __init__(self) -> None:
        self.crashed: list[BaseException] = []

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)


class Producer:
    """Records the transactions it is asked to commit; fenced when told so."""

    def __init__(self, fenced: bool) -> None:
        self.fenced = fenced
        self.committed: list[dict[str, dict[TP, int]]] = []

    async def commit_transactions(
        self,
        by_transaction: Mapping[str, Mapping[TP, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        if self.fenced:
            raise ProducerFenced()
        self.committed.append({tid: dict(offsets) for tid, offsets in by_transaction.items()})


def manager(fenced: bool) -> Any:
    app = App()
    AppRuntime.attach(app)
    fake = SimpleNamespace(
        app=app, producer=Producer(fenced), written_since_commit=set(), input_since_commit=set()
    )

    async def nothing(*args: Any) -> None:
        return None

    fake.drain_send_buffer = nothing
    fake.begin_missing_transactions = nothing
    fake.transactional_id_of = lambda tp: TransactionManager.transactional_id_of(fake, tp)
    return fake


async def test_a_fenced_transaction_fails_the_commit() -> None:
    fake = manager(fenced=True)
    fake.written_since_commit.add("app-0-1")
    with pytest.raises(ProducerFenced):
        await TransactionManager.commit(fake, {TP("src", 1): 10})
    assert fake.written_since_commit == {"app-0-1"}, "nothing counts as committed"
    assert [type(e) for e in fake.app.crashed] == [ProducerFenced], "the worker stops"


async def test_a_fenced_commit_never_reaches_the_state_apply() -> None:
    fake = manager(fenced=True)
    applied: list[CommitOutcome] = []
    sequence = CommitSequence()
    sequence.add(AfterCommit(applied.append))

    class Transport:
        async def drain_send_buffer(self) -> None:
            return None

        async def commit_offsets(self, request: CommitRequest) -> CommitOutcome:
            await TransactionManager.commit(fake, {TP("src", 1): 10})
            return CommitOutcome(committed=True)

        async def commit_writes_without_offsets(self, request: CommitRequest) -> None:
            return None

    with pytest.raises(ProducerFenced):
        await sequence.run(Transport(), CommitRequest())
    assert applied == [], "the aborted transaction's state is not applied"


async def test_offsets_commit_in_the_transaction_of_their_partition() -> None:
    fake = manager(fenced=False)
    fake.written_since_commit.update({"app-0-1", "app-0-2"})
    assert await TransactionManager.commit(fake, {TP("src", 1): 10, TP("src", 2): 7, TP("other", 1): 3})
    assert fake.producer.committed == [
        {"app-0-1": {TP("src", 1): 10, TP("other", 1): 3}, "app-0-2": {TP("src", 2): 7}}
    ]
    assert fake.written_since_commit == set()


async def test_offsets_of_a_transaction_without_its_producer_fail_the_commit(tmp_path: Path) -> None:
    """Faust's commit logs a warning for a transactional id it has no producer for (never
    started, or dropped after it was fenced) and returns as if the offsets had committed."""
    app = faust.App(
        "no-producer",
        broker="continust://127.0.0.1:1",
        processing_guarantee="exactly_once",
        datadir=str(tmp_path),
        autodiscover=False,
        web_enabled=False,
    )
    AppRuntime.attach(app)
    with pytest.raises(NoTransactionProducer, match="no-producer-0-3 for the offsets of src:3"):
        await app.producer.commit_transactions({"no-producer-0-3": {TP("src", 3): 10}}, "no-producer")
