"""Step 6 of a commit never makes processed input visible without its offsets
(:meth:`agents.transport.TransactionManager.commit_writes_without_offsets`): a transaction that
holds records of input whose offset did not commit raises :class:`UncoveredInput` before
anything is committed, and one that wrote without input (an idle advance) is not refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from agents.app_runtime import AppRuntime
from agents.transport import TransactionManager, UncoveredInput


class App:
    """A stand-in for the Faust app: its id, and topic group 0 for every topic."""

    conf = SimpleNamespace(id="app")
    assignor = SimpleNamespace(group_for_topic=lambda t: 0)


def manager() -> SimpleNamespace:
    """The state the step reads, on a stand-in (topic group 0 for every topic)."""
    app = App()
    AppRuntime.attach(app)
    fake = SimpleNamespace(app=app, written_since_commit=set(), input_since_commit=set(), drained=0)

    async def drain_send_buffer() -> None:
        fake.drained += 1
        raise RuntimeError("reached the commit")  # past the check: stop here

    fake.drain_send_buffer = drain_send_buffer
    fake.transactional_id_of = lambda tp: TransactionManager.transactional_id_of(fake, tp)
    return fake


async def test_input_written_without_its_offset_is_refused_before_anything_commits() -> None:
    fake = manager()
    TransactionManager.mark_input(fake, TP("src", 2))
    fake.written_since_commit.add("app-0-2")
    with pytest.raises(UncoveredInput, match="app-0-2") as raised:
        await TransactionManager.commit_writes_without_offsets(fake)
    assert raised.value.transactional_ids == ["app-0-2"]
    assert fake.drained == 0


async def test_writes_without_input_and_input_without_writes_go_on_to_the_commit() -> None:
    fake = manager()
    fake.written_since_commit.add("app-0-1")  # an idle advance: no input behind it
    TransactionManager.mark_input(fake, TP("src", 3))  # input that wrote nothing
    with pytest.raises(RuntimeError, match="reached the commit"):
        await TransactionManager.commit_writes_without_offsets(fake)
    assert fake.drained == 1
