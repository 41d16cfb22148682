"""The emit policies (:mod:`windows.emit_policy`) on their own: the factory builds one per emit
mode, and each answers a change, a close and a commit as its mode says. Their behaviour inside
the engine is checked against the reference model in ``test_window_properties.py``."""

from __future__ import annotations

import pytest

from windows.aggregation_calls import parse_aggregation
from windows.emit_policy import POLICIES, EmitChange, EmitFinal, EmitUpdate, emit_policy
from windows.keyed_state import KeyWindows, Outcome, apply_event
from windows.spec import SessionWindows, Window
from windows.table import EMITS, WindowedAggregate


def sessions(emit: str) -> WindowedAggregate:
    count = parse_aggregation("count()")
    return WindowedAggregate(SessionWindows(gap_ms=10, grace_ms=100), (count,), ("n",), emit)


def event(table: WindowedAggregate, state: KeyWindows, t: int, arrival: int) -> Outcome:
    """An event at ``t`` on the key's ``state``, with no stream time yet."""
    return apply_event(state, table.window, table.aggregations, {}, t, arrival, None)


def plain(emissions) -> list[tuple]:
    return [(e.key, e.start, e.end, e.version, e.value, e.replaces) for e in emissions]


@pytest.mark.parametrize(
    ("emit", "policy"), [("change", EmitChange), ("update", EmitUpdate), ("final", EmitFinal)]
)
def test_the_factory_builds_the_policy_of_the_emit_mode(emit: str, policy: type) -> None:
    assert isinstance(emit_policy(sessions(emit)), policy)


def test_every_emit_mode_has_a_policy() -> None:
    assert set(POLICIES) == set(EMITS)


def test_each_policy_answers_a_change_a_close_and_a_commit() -> None:
    """Key "a": an event at 0 opens [0, 10); one at 5 merges it into [0, 15)."""
    records: dict[str, list] = {}
    for emit in EMITS:
        table, state = sessions(emit), KeyWindows()
        policy = emit_policy(table)
        out = []
        for arrival, t in enumerate((0, 5)):
            out += policy.changed(
                "a", apply_event(state, table.window, table.aggregations, {}, t, arrival, None)
            )
        out += policy.at_commit()
        closed = policy.closed("a", state.windows[Window(0, 15)])
        out += [] if closed is None else [closed]
        assert policy.pending == 0 and policy.at_commit() == ()
        records[emit] = plain(out)
    assert records == {
        "change": [("a", 0, 10, 1, {"n": 1}, ()), ("a", 0, 15, 2, {"n": 2}, (Window(0, 10),))],
        # [0, 10) was created and absorbed before the commit: the consumer never saw it
        "update": [("a", 0, 15, 1, {"n": 2}, ())],
        "final": [("a", 0, 15, 1, {"n": 2}, ())],
    }


def test_update_waits_for_the_commit() -> None:
    table, state = sessions("update"), KeyWindows()
    policy = emit_policy(table)
    assert policy.changed("a", event(table, state, 0, 0)) == ()
    assert policy.changed("b", event(table, KeyWindows(), 3, 1)) == ()
    assert policy.pending == 2
    assert plain(policy.at_commit()) == [("a", 0, 10, 1, {"n": 1}, ()), ("b", 3, 13, 1, {"n": 1}, ())]
    assert policy.pending == 0
