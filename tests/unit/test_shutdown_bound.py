"""The shutdown bound: once armed, the process exits 1 when the bound passes, whatever the event
loop is doing; arming again does not restart or add a countdown."""

from __future__ import annotations

import threading

from agents.shutdown_bound import EXIT_SHUTDOWN_OVERRAN, ShutdownBound


def test_an_armed_bound_exits_with_its_code_once_it_passes() -> None:
    exits: list[int] = []
    fired = threading.Event()

    def record(code: int) -> None:
        exits.append(code)
        fired.set()

    bound = ShutdownBound(0.05, exit=record)
    assert not fired.is_set()  # nothing happens before a stop begins
    bound.arm()
    bound.arm()
    assert fired.wait(timeout=10)
    assert bound._timer is not None
    bound._timer.join(timeout=10)
    assert exits == [EXIT_SHUTDOWN_OVERRAN] == [1]
