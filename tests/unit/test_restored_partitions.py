"""Which active partitions stay whole through a rebalance (:mod:`agents.restored_partitions`),
against a reference model: a partition is whole during a rebalance only if it was assigned
here, with the worker settled, in every assignment since."""

from __future__ import annotations

from types import SimpleNamespace

from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from agents.restored_partitions import RestoredPartitions

PARTITIONS = [TP("changelog", p) for p in range(4)]


class Worker:
    """A worker's assignment and whether it is settled, as the class reads them."""

    def __init__(self) -> None:
        self.actives: set[TP] = set()
        self.is_settled = True
        self.app = SimpleNamespace(assignor=SimpleNamespace(assigned_actives=lambda: set(self.actives)))
        self.restored = RestoredPartitions(self.app, settled=lambda: self.is_settled)  # type: ignore[arg-type]


def test_a_kept_partition_is_whole_through_the_rebalance_and_a_new_one_only_once_settled() -> None:
    w = Worker()
    w.actives = {PARTITIONS[0], PARTITIONS[1]}
    assert w.restored.holds(PARTITIONS[0])  # settled: every active partition
    w.is_settled = False  # a rebalance begins; the old assignment holds until the new one
    assert w.restored.holds(PARTITIONS[0]) and w.restored.holds(PARTITIONS[1])
    w.actives = {PARTITIONS[0], PARTITIONS[2]}  # 1 leaves, 2 arrives (restoring)
    w.restored.assigned(w.actives)
    assert w.restored.holds(PARTITIONS[0])
    assert not w.restored.holds(PARTITIONS[1]) and not w.restored.holds(PARTITIONS[2])
    w.actives = {PARTITIONS[0], PARTITIONS[1], PARTITIONS[2]}  # 1 comes back before settling
    w.restored.assigned(w.actives)
    assert not w.restored.holds(PARTITIONS[1]), "its local state may be older than its other owner's"
    w.is_settled = True
    assert all(w.restored.holds(tp) for tp in w.actives)


# a worker's life: settle, or a rebalance that assigns a set of partitions (None: it begins)
EVENTS = st.lists(
    st.one_of(st.just("settle"), st.none(), st.frozensets(st.sampled_from(PARTITIONS))), max_size=30
)


@given(EVENTS)
def test_whole_partitions_match_a_reference_model(events: list[object]) -> None:
    w = Worker()
    whole: set[TP] = set()  # the model: whole since the worker last settled, in every assignment
    for event in events:
        if event == "settle":
            w.is_settled = True
            whole = set(w.actives)
        elif event is None:
            w.is_settled = False
        else:
            assert isinstance(event, frozenset)
            w.is_settled = False
            w.actives = set(event)
            w.restored.assigned(w.actives)
            whole &= w.actives
        for tp in PARTITIONS:
            assert w.restored.holds(tp) == (tp in (set(w.actives) if w.is_settled else whole)), (events, tp)
