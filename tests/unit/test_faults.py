"""Fault points (:mod:`agents.faults`): the plan's syntax, and a process that reaches its point
writes the marker and dies by the signal the plan names, on exactly the n-th time."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import agents.faults as faults_module
from agents.faults import FaultPlan, FaultPoint, Faults, plans_from_env

MARKER = Path("/nonexistent/fault-fired")


@pytest.mark.parametrize(
    ("text", "point", "occurrence", "signal_name"),
    [
        ("batch.processed", FaultPoint.BATCH_PROCESSED, 1, "kill"),
        ("commit.in_transaction@3", FaultPoint.COMMIT_IN_TRANSACTION, 3, "kill"),
        ("commit.done:term", FaultPoint.COMMIT_DONE, 1, "term"),
        (" recovery@12:kill ", FaultPoint.RECOVERY, 12, "kill"),
    ],
)
def test_a_plan_names_a_point_an_occurrence_and_a_signal(text, point, occurrence, signal_name):
    assert FaultPlan.parse(text, MARKER) == FaultPlan(point, occurrence, signal_name, MARKER)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("batch.done", "unknown fault point 'batch.done'"),
        ("recovery@0", "1 or more"),
        ("recovery@two", "1 or more"),
        ("recovery:stop", "the action must be one of kill, term, hold"),
        ("recovery:hold", "recovery cannot hold"),
        ("state.apply:hold", "state.apply cannot hold"),
    ],
)
def test_a_bad_plan_is_refused_with_what_is_wrong(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        FaultPlan.parse(text, MARKER)


def test_no_plan_when_the_variable_is_unset_or_empty(tmp_path: Path):
    assert FaultPlan.from_env({}, tmp_path) is None
    assert FaultPlan.from_env({"CONTINUST_FAULT": " "}, tmp_path) is None
    plan = FaultPlan.from_env({"CONTINUST_FAULT": "recovery"}, tmp_path)
    assert plan is not None and plan.marker == tmp_path / "fault-fired"
    elsewhere = tmp_path / "x" / "marker"
    env = {"CONTINUST_FAULT": "recovery", "CONTINUST_FAULT_MARKER": str(elsewhere)}
    plan = FaultPlan.from_env(env, tmp_path)
    assert plan is not None and plan.marker == elsewhere


def test_other_points_and_earlier_occurrences_do_not_fire(tmp_path: Path):
    marker = tmp_path / "fault-fired"
    faults = Faults(FaultPlan(FaultPoint.COMMIT_DONE, 3, "kill", marker))
    for _ in range(5):
        faults.reached(FaultPoint.BATCH_PROCESSED)
    faults.reached(FaultPoint.COMMIT_DONE)
    faults.reached(FaultPoint.COMMIT_DONE)
    assert not marker.exists()
    assert faults.counts == {FaultPoint.COMMIT_DONE: 2}
    Faults().reached(FaultPoint.COMMIT_DONE)  # no plan: inert


CHILD = """
import sys
from pathlib import Path
from agents.faults import FaultPlan, FaultPoint, Faults
faults = Faults(FaultPlan.parse(sys.argv[1], Path(sys.argv[2])))
for i in range(5):
    print(i, flush=True)
    faults.reached(FaultPoint.BATCH_PROCESSED, tp="t:0", last_offset=i)
"""


@pytest.mark.parametrize(("signal_name", "signum"), [("kill", signal.SIGKILL), ("term", signal.SIGTERM)])
def test_the_nth_time_the_point_is_reached_writes_the_marker_and_signals(tmp_path: Path, signal_name, signum):
    marker = tmp_path / "sub" / "fault-fired"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, f"batch.processed@3:{signal_name}", str(marker)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signum, child.stderr
    assert child.stdout.split() == ["0", "1", "2"]  # died the 3rd time, before a 4th
    fired = orjson.loads(marker.read_bytes())
    assert fired["point"] == "batch.processed"
    assert fired["occurrence"] == 3
    assert fired["signal"] == signal_name
    assert (fired["tp"], fired["last_offset"]) == ("t:0", 2)


def test_a_sequence_holds_before_it_may_end_the_process(tmp_path: Path):
    env = {"CONTINUST_FAULT": "batch.started:hold;commit.state@2:hold;commit.done:term"}
    plans = plans_from_env(env, tmp_path)
    assert [(p.point, p.occurrence, p.signal_name) for p in plans] == [
        (FaultPoint.BATCH_STARTED, 1, "hold"),
        (FaultPoint.COMMIT_STATE, 2, "hold"),
        (FaultPoint.COMMIT_DONE, 1, "term"),
    ]
    with pytest.raises(ValueError, match="only the last fault"):
        plans_from_env({"CONTINUST_FAULT": "commit.done;batch.started:hold"}, tmp_path)


async def test_a_hold_waits_for_a_revocation_then_arms_the_next_fault(tmp_path: Path):
    """The worker stops at the point, marks it held, and goes on only once a revocation has
    begun; a point reached while a revocation is in progress does not count."""
    marker = tmp_path / "fault-fired"
    first = FaultPlan(FaultPoint.COMMIT_OFFSETS, 1, "hold", marker)
    second = FaultPlan(FaultPoint.BATCH_WRITTEN, 2, "hold", marker)
    faults = Faults(first, later=[second])
    await faults.pass_point(FaultPoint.BATCH_WRITTEN)  # not the armed point: goes on
    holding = asyncio.ensure_future(faults.pass_point(FaultPoint.COMMIT_OFFSETS, tp="t:0"))
    done, _ = await asyncio.wait({holding}, timeout=0)  # it runs up to its wait, and stays there
    assert not done
    assert orjson.loads(marker.read_bytes())["released"] is False
    faults.revocation_began()
    await holding
    released = orjson.loads(marker.read_bytes())
    assert (released["point"], released["held"], released["released"], released["tp"]) == (
        "commit.offsets",
        1,
        True,
        "t:0",
    )
    assert (released["released_points"], released["timed_out_points"]) == (["commit.offsets"], [])
    assert faults.plan == second
    await faults.pass_point(FaultPoint.BATCH_WRITTEN)  # revoking: does not count
    faults.revocation_ended()
    await faults.pass_point(FaultPoint.BATCH_WRITTEN)  # the first count: not yet
    assert faults.plan == second


async def test_a_hold_no_revocation_releases_goes_on_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A hold that no revocation ends within the limit goes on, and the marker names it among
    the holds that timed out (a test tells it from one a revocation released)."""
    monkeypatch.setattr(faults_module, "HOLD_LIMIT_S", 0)
    marker = tmp_path / "fault-fired"
    faults = Faults(FaultPlan(FaultPoint.COMMIT_STATE, 1, "hold", marker))
    await faults.pass_point(FaultPoint.COMMIT_STATE)
    ended = orjson.loads(marker.read_bytes())
    assert (ended["held"], ended["released"]) == (1, False)
    assert (ended["released_points"], ended["timed_out_points"]) == ([], ["commit.state"])
    assert faults.plan is None
