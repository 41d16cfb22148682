"""Property tests: the window engine (:class:`windows.partition.PartitionWindows` over an
:class:`~windows.store.InMemoryWindowStore`) against a small reference model.

The reference model below is written from the window contract alone (half-open windows, stream
time, grace, retention, emit modes, session merging, the aggregations), not from the engine's
code: it keeps the raw events of every live window and recomputes each aggregate from them, finds
a tumbling/sliding event's windows by brute force, and re-scans every window on each stream-time
advance instead of keeping a schedule. Only the engine's public classes are imported.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from windows.aggregates import InvalidField
from windows.aggregation_calls import parse_aggregation
from windows.emission import Emission
from windows.partition import PartitionWindows
from windows.spec import SessionWindows, SlidingWindows, TumblingWindows, WindowSpec
from windows.store import InMemoryWindowStore
from windows.table import WindowedAggregate
from windows.write_back import WriteBackStore

CALLS = {
    "n": "count()",
    "s": "sum(x)",
    "lo": "min(x)",
    "hi": "max(x)",
    "mean": "avg(x)",
    "first": "first(x)",
    "last": "last(x)",
}
KINDS = ("tumbling", "sliding", "session")
EMITS = ("change", "final")  # emit = "update" coalesces "change" per commit: section 8
KEYS = ("a", "b", "c")
PROBE = "probe"  # a key no generated event uses
FAR = 10**6  # a stream time past every generated window's end + grace + retention

# (key, start, end, version, value, replaces): an Emission as plain data
Em = tuple[str, int, int, int, dict[str, Any], tuple[tuple[int, int], ...]]
Ev = tuple[int, int, Any]  # (timestamp, arrival, x) of one accepted event
# ("event", key, payload, timestamp) or ("advance", "", {}, timestamp)
Op = tuple[str, str, dict[str, Any], int]

INVALID = "invalid"


# --------------------------------------------------------------------------------------------
# The reference model
# --------------------------------------------------------------------------------------------


@dataclass
class RefWindow:
    start: int
    end: int
    events: list[Ev] = field(default_factory=list)
    version: int = 0  # emissions of this window so far
    final_sent: bool = False


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def brute_windows(t: int, size: int, slide: int) -> list[tuple[int, int]]:
    """Every [k*slide, k*slide + size) containing t, by trying every start near t."""
    return [
        (start, start + size)
        for start in range(t - size - slide, t + slide + 1)
        if start % slide == 0 and start <= t < start + size
    ]


def ref_value(names: Sequence[str], events: Sequence[Ev]) -> dict[str, Any]:
    xs = [x for _, _, x in events]
    by_time = sorted(events, key=lambda e: (e[0], e[1]))  # (timestamp, arrival)
    out: dict[str, Any] = {}
    for name in names:
        if name == "n":
            out[name] = len(events)
        elif name == "s":
            out[name] = sum(xs)
        elif name == "lo":
            out[name] = min(xs) if xs else None
        elif name == "hi":
            out[name] = max(xs) if xs else None
        elif name == "mean":
            out[name] = sum(xs) / len(xs) if xs else None
        elif name == "first":
            out[name] = by_time[0][2] if by_time else None
        elif name == "last":
            out[name] = by_time[-1][2] if by_time else None
    return out


class Reference:
    def __init__(
        self,
        kind: str,
        emit: str,
        names: Sequence[str],
        grace: int,
        retention: int,
        size: int = 0,
        slide: int = 0,
        gap: int = 0,
    ) -> None:
        self.kind, self.emit, self.names = kind, emit, tuple(names)
        self.grace, self.retention = grace, retention
        self.size, self.slide, self.gap = size, slide, gap
        self.stream_time: int | None = None
        self.keys: dict[str, dict[tuple[int, int], RefWindow]] = {}

    def closed(self, end: int, judged_by: int | str | None = "stream time") -> bool:
        """Whether a window ending at ``end`` is closed by stream time (or by ``judged_by``)."""
        t = self.stream_time if judged_by == "stream time" else judged_by
        return t is not None and t >= end + self.grace  # type: ignore[operator]

    def valid(self, payload: Mapping[str, Any]) -> bool:
        if all(n == "n" for n in self.names):  # count() reads no field
            return True
        x = payload.get("x")
        return "x" in payload and isinstance(x, int | float) and not isinstance(x, bool)

    def on_event(
        self,
        key: str,
        payload: Mapping[str, Any],
        t: int,
        arrival: int,
        judged_by: int | str | None = "stream time",
    ) -> tuple[str, bool, int | None, list[Em]]:
        """(INVALID or "ok", late, the time the event was judged by, emissions). By default the
        event is judged by stream time, which it then moves; with ``judged_by`` (a partition fed
        by several inputs, :class:`ReferenceInputs`) it is judged by that time and stream time
        is left to the caller."""
        before = self.stream_time if judged_by == "stream time" else judged_by
        closed = self.closed if judged_by == "stream time" else (lambda end: self.closed(end, judged_by))
        if not self.valid(payload):
            return INVALID, False, before, []  # type: ignore[return-value]
        ev: Ev = (t, arrival, payload.get("x"))
        windows = self.keys.get(key, {})
        replaces: tuple[tuple[int, int], ...] = ()
        if self.kind == "session":
            own = (t, t + self.gap)
            absorbed = [w for w in windows.values() if overlaps((w.start, w.end), own) and not closed(w.end)]
            start = min([own[0], *(w.start for w in absorbed)])
            end = max([own[1], *(w.end for w in absorbed)])
            if closed(end):
                return "ok", True, before, []  # type: ignore[return-value]
            merged = RefWindow(
                start,
                end,
                events=[e for w in absorbed for e in w.events] + [ev],
                version=max((w.version for w in absorbed), default=0),
            )
            for w in absorbed:
                del windows[(w.start, w.end)]
            windows[(start, end)] = merged
            replaces = tuple(sorted((w.start, w.end) for w in absorbed if (w.start, w.end) != (start, end)))
            changed = [merged]
        else:
            slide = self.size if self.kind == "tumbling" else self.slide
            targets = [w for w in brute_windows(t, self.size, slide) if not closed(w[1])]
            if not targets:
                return "ok", True, before, []  # type: ignore[return-value]
            changed = []
            for start, end in sorted(targets):
                ref = windows.setdefault((start, end), RefWindow(start, end))
                ref.events.append(ev)
                changed.append(ref)
        self.keys[key] = windows
        out: list[Em] = []
        if self.emit == "change":
            for w in changed:
                w.version += 1
                out.append((key, w.start, w.end, w.version, ref_value(self.names, w.events), replaces))
        if judged_by == "stream time":
            out += self.advance(t)
        return "ok", False, before, out  # type: ignore[return-value]

    def advance(self, t: int) -> list[Em]:
        if self.stream_time is not None and t <= self.stream_time:
            return []
        self.stream_time = t
        out: list[Em] = []
        if self.emit == "final":
            due = sorted(
                (w.end + self.grace, key, w.start, w.end)
                for key, windows in self.keys.items()
                for w in windows.values()
                if self.closed(w.end) and not w.final_sent
            )
            for _, key, start, end in due:
                w = self.keys[key][(start, end)]
                w.final_sent, w.version = True, 1
                out.append((key, start, end, 1, ref_value(self.names, w.events), ()))
        for key in list(self.keys):
            live = {k: w for k, w in self.keys[key].items() if t < w.end + self.grace + self.retention}
            if live:
                self.keys[key] = live
            else:
                del self.keys[key]
        return out

    def view(self) -> dict[str, dict[tuple[int, int], dict[str, Any]]]:
        return {
            key: {k: ref_value(self.names, w.events) for k, w in sorted(windows.items())}
            for key, windows in self.keys.items()
        }


class ReferenceInputs:
    """A table partition fed by several inputs, from the contract of :mod:`windows.progress`
    alone: each input's progress is the largest event time of its valid events (or what a
    progress report says), the clock is the smallest progress of the inputs not idle once all
    ``expected`` have reported (the largest when all are idle) and never moves back, and an
    event is judged by the larger of its own input's progress before it and the clock. The
    clock moves after every event and report."""

    def __init__(self, ref: Reference, expected: int) -> None:
        self.ref, self.expected = ref, expected
        self.inputs: dict[int, list[Any]] = {}  # input -> [progress, idle]

    def event(
        self, source: int, own: int | str | None, key: str, payload: Mapping[str, Any], t: int, arrival: int
    ) -> tuple[str, bool, list[Em]]:
        """``own``: the input's progress before the event, or ``"tracked"`` (from its events
        here). Returns (INVALID or "ok", late, emissions)."""
        entry = self.inputs.get(source)
        if own == "tracked":
            own = None if entry is None else entry[0]
        clock = self.ref.stream_time
        judged_by = max((x for x in (own, clock) if x is not None), default=None)  # type: ignore[type-var]
        status, late, _before, out = self.ref.on_event(key, payload, t, arrival, judged_by=judged_by)
        if status == "ok":
            entry = self.inputs.setdefault(source, [None, False])
            entry[0] = t if entry[0] is None else max(entry[0], t)
            entry[1] = False
        return status, late, out + self.tick()

    def passed(self, source: int, t: int) -> list[Em]:
        """A valid event of input ``source`` at ``t`` that the table's user functions dropped: no
        window takes it, and its time moves its input's progress as an event's would."""
        entry = self.inputs.setdefault(source, [None, False])
        entry[0] = t if entry[0] is None else max(entry[0], t)
        entry[1] = False
        return self.tick()

    def report(self, source: int, progress: int | None, idle: bool) -> list[Em]:
        entry = self.inputs.setdefault(source, [None, False])
        if progress is not None:
            entry[0] = progress if entry[0] is None else max(entry[0], progress)
        entry[1] = idle
        return self.tick()

    def tick(self) -> list[Em]:
        if len(self.inputs) < self.expected:
            return []
        active = [p for p, idle in self.inputs.values() if not idle]
        if active:
            if None in active:
                return []
            allowed = min(active)
        else:
            known = [p for p, _idle in self.inputs.values() if p is not None]
            if not known:
                return []
            allowed = max(known)
        return self.ref.advance(allowed)


# --------------------------------------------------------------------------------------------
# Running the engine
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    kind: str
    emit: str
    names: tuple[str, ...]
    grace: int
    retention: int
    size: int = 0
    slide: int = 0
    gap: int = 0

    def spec(self) -> WindowSpec:
        if self.kind == "tumbling":
            return TumblingWindows(self.size, self.grace, self.retention)
        if self.kind == "sliding":
            return SlidingWindows(self.size, self.slide, self.grace, self.retention)
        return SessionWindows(self.gap, self.grace, self.retention)

    def table(self) -> WindowedAggregate:
        return WindowedAggregate(
            window=self.spec(),
            aggregations=tuple(parse_aggregation(CALLS[n]) for n in self.names),
            names=self.names,
            emit=self.emit,
        )

    def reference(self) -> Reference:
        return Reference(
            self.kind, self.emit, self.names, self.grace, self.retention, self.size, self.slide, self.gap
        )


def plain(emissions: Iterable[Emission]) -> list[Em]:
    return [
        (e.key, e.start, e.end, e.version, e.value, tuple((w.start, w.end) for w in e.replaces))
        for e in emissions
    ]


def engine_step(pw: PartitionWindows, op: Op, arrival: int) -> tuple[str, bool, int | None, list[Em]]:
    """One op through the engine, in the reference's result shape."""
    kind, key, payload, t = op
    if kind == "advance":
        before = pw.stream_time
        return "ok", False, before, plain(pw.advance_to(t))
    before = pw.stream_time
    try:
        result = pw.on_event(key, payload, t, arrival)
    except InvalidField:
        return INVALID, False, before, []
    return "ok", result.late, result.stream_time, plain(result.emissions)


def ref_step(ref: Reference, op: Op, arrival: int) -> tuple[str, bool, int | None, list[Em]]:
    kind, key, payload, t = op
    if kind == "advance":
        before = ref.stream_time
        return "ok", False, before, ref.advance(t)
    return ref.on_event(key, payload, t, arrival)


def store_view(
    table: WindowedAggregate, store: InMemoryWindowStore, partition: int
) -> dict[str, dict[tuple[int, int], dict[str, Any]]]:
    out = {}
    for key, kw in store.items(partition):
        assert kw.windows, f"key {key!r} stored with no windows"
        out[key] = {(w.start, w.end): table.value(w) for w in kw.in_order()}
    return out


def raw_store(store: InMemoryWindowStore, partition: int) -> tuple[dict[str, Any], int | None]:
    return {k: kw.to_json() for k, kw in store.items(partition)}, store.get_stream_time(partition)


def check_store(cfg: Config, ref: Reference, store: InMemoryWindowStore, partition: int) -> None:
    table = cfg.table()
    assert store_view(table, store, partition) == ref.view()
    for key in (*KEYS, PROBE):
        assert (store.get(partition, key) is None) == (key not in ref.keys)
    assert store.get_stream_time(partition) == ref.stream_time


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

INVALID_PAYLOADS: list[dict[str, Any]] = [{"x": "bad"}, {}, {"x": None}, {"x": True}, {"y": 1}, {"x": [1]}]
invalid_payloads = st.sampled_from(INVALID_PAYLOADS)


def _payload(n: int) -> dict[str, Any]:
    """0..18 -> {"x": -9..9}; 19..21 -> an invalid payload (one draw, about one in seven invalid)."""
    return {"x": n - 9} if n < 19 else INVALID_PAYLOADS[n % len(INVALID_PAYLOADS)]


payloads = st.integers(0, 21).map(_payload)
lags = st.one_of(st.just(0), st.integers(0, 6), st.integers(0, 20), st.integers(0, 50))


@st.composite
def configs(draw: st.DrawFn, kind: str, emit: str) -> Config:
    names = tuple(draw(st.lists(st.sampled_from(list(CALLS)), min_size=1, max_size=len(CALLS), unique=True)))
    grace = draw(st.integers(0, 8))
    retention = draw(st.integers(0, 30))
    if kind == "tumbling":
        return Config(kind, emit, names, grace, retention, size=draw(st.integers(1, 12)))
    if kind == "sliding":
        size = draw(st.integers(1, 12))
        return Config(kind, emit, names, grace, retention, size=size, slide=draw(st.integers(1, size)))
    return Config(kind, emit, names, grace, retention, gap=draw(st.integers(1, 10)))


@st.composite
def streams(draw: st.DrawFn, advances: bool = False, max_size: int = 40) -> list[Op]:
    """A clock that moves forward by small steps; each event is stamped ``clock - lag``, so most
    are roughly in order, some late, some far past retention. With ``advances``, some ops are
    ``advance_to`` calls at times around the clock (earlier, equal or later)."""
    clock = draw(st.integers(-10, 10))
    keys = draw(st.sampled_from([KEYS[:1], KEYS]))  # one busy key makes session merges likelier
    ops: list[Op] = []
    for _ in range(draw(st.integers(0, max_size))):
        clock += draw(st.integers(0, 6))
        if advances and draw(st.integers(0, 4)) == 0:
            ops.append(("advance", "", {}, clock + draw(st.integers(-10, 25))))
        else:
            ops.append(("event", draw(st.sampled_from(keys)), draw(payloads), clock - draw(lags)))
    return ops


ALL = [(k, e) for k in KINDS for e in EMITS]
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# 1. Random streams: emissions, lateness, invalid events and the final store match the model
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "emit"), ALL)
@FAST
@given(data=st.data())
def test_engine_matches_reference_model(kind: str, emit: str, data: st.DataObject) -> None:
    cfg = data.draw(configs(kind, emit), label="config")
    ops = data.draw(streams(), label="ops")
    partition = data.draw(st.sampled_from([0, 3]), label="partition")
    store = InMemoryWindowStore()
    pw = PartitionWindows(cfg.table(), store, partition)
    ref = cfg.reference()
    emitted_final: set[tuple[str, int, int]] = set()
    for arrival, op in enumerate(ops):
        got = engine_step(pw, op, arrival)
        assert got == ref_step(ref, op, arrival), f"op #{arrival} {op}"
        assert pw.stream_time == ref.stream_time
        if emit == "final":  # redundant with the model, but states the rule directly
            for key, start, end, version, _, _ in got[3]:
                assert version == 1
                assert pw.stream_time is not None and pw.stream_time >= end + cfg.grace
                assert (key, start, end) not in emitted_final
                emitted_final.add((key, start, end))
    check_store(cfg, ref, store, partition)
    # drain: far in the future every remaining window closes (final: its one record) and expires
    drained = plain(pw.advance_to(FAR))
    assert drained == ref.advance(FAR)
    if emit == "final":
        assert not emitted_final & {(k, s, e) for k, s, e, *_ in drained}
    assert list(store.items(partition)) == []
    check_store(cfg, ref, store, partition)


# --------------------------------------------------------------------------------------------
# 2. Restart: a new PartitionWindows on the same store continues exactly
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "emit"), ALL)
@FAST
@given(data=st.data())
def test_restart_on_the_same_store_continues_exactly(kind: str, emit: str, data: st.DataObject) -> None:
    cfg = data.draw(configs(kind, emit), label="config")
    ops = data.draw(streams(advances=True), label="ops")
    cuts = set(data.draw(st.lists(st.integers(0, len(ops)), min_size=1, max_size=3), label="cuts"))

    whole_store = InMemoryWindowStore()
    whole = PartitionWindows(cfg.table(), whole_store, 0)
    expected = [engine_step(whole, op, i) for i, op in enumerate(ops)]

    store = InMemoryWindowStore()
    pw = PartitionWindows(cfg.table(), store, 0)
    ref = cfg.reference()
    got = []
    for i, op in enumerate(ops):
        if i in cuts:
            pw = PartitionWindows(cfg.table(), store, 0)  # restart: only the store survives
            assert pw.stream_time == ref.stream_time
        got.append(engine_step(pw, op, i))
        assert got[-1] == ref_step(ref, op, i), f"op #{i} {op}"
    assert got == expected
    assert raw_store(store, 0) == raw_store(whole_store, 0)
    check_store(cfg, ref, store, 0)
    # the rebuilt close/expiry schedule holds every remaining window: restart once more, drain
    pw = PartitionWindows(cfg.table(), store, 0)
    drained = plain(pw.advance_to(FAR))
    assert drained == plain(whole.advance_to(FAR)) == ref.advance(FAR)
    assert raw_store(store, 0) == raw_store(whole_store, 0) == ({}, FAR)


# --------------------------------------------------------------------------------------------
# 3. advance_to: closes and expires like an event at that time; a no-op for earlier times
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "emit"), ALL)
@FAST
@given(data=st.data())
def test_advance_to_acts_like_an_event_at_that_time(kind: str, emit: str, data: st.DataObject) -> None:
    cfg = data.draw(configs(kind, emit), label="config")
    ops = data.draw(streams(advances=True), label="ops")
    table = cfg.table()
    store, probed_store = InMemoryWindowStore(), InMemoryWindowStore()
    pw = PartitionWindows(table, store, 0)
    probed = PartitionWindows(table, probed_store, 0)  # every advance_to replaced by a probe event
    ref = cfg.reference()
    for arrival, op in enumerate(ops):
        kind_, _, _, t = op
        before = raw_store(store, 0)
        got = engine_step(pw, op, arrival)
        assert got == ref_step(ref, op, arrival), f"op #{arrival} {op}"
        if kind_ == "advance":
            probe = probed.on_event(PROBE, {"x": 0}, t, arrival)
            assert got[3] == [e for e in plain(probe.emissions) if e[0] != PROBE]
            if got[2] is not None and t <= got[2]:
                assert got[3] == []
                assert raw_store(store, 0) == before
                assert pw.stream_time == got[2]
        else:
            engine_step(probed, op, arrival)
        assert pw.stream_time == probed.stream_time
        without_probe = {k: v for k, v in raw_store(probed_store, 0)[0].items() if k != PROBE}
        assert raw_store(store, 0) == (without_probe, probed.stream_time)
    check_store(cfg, ref, store, 0)


def test_advance_to_example_final_and_expiry() -> None:
    # size 10, grace 2, retention 5: [0,10) closes at 12 and is deleted at 17
    table = Config("tumbling", "final", ("n", "s"), grace=2, retention=5, size=10).table()
    store = InMemoryWindowStore()
    pw = PartitionWindows(table, store, 0)
    pw.on_event("a", {"x": 4}, 3, 0)
    pw.on_event("a", {"x": 5}, 8, 1)
    assert pw.advance_to(11) == ()
    assert pw.advance_to(5) == ()  # backwards: ignored
    assert pw.stream_time == 11
    assert plain(pw.advance_to(12)) == [("a", 0, 10, 1, {"n": 2, "s": 9}, ())]
    assert pw.advance_to(16) == ()
    assert store.get(0, "a") is not None
    assert pw.advance_to(17) == ()
    assert store.get(0, "a") is None
    assert pw.on_event("a", {"x": 1}, 9, 2).late


# --------------------------------------------------------------------------------------------
# 4. Invalid events change nothing, now or later
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_invalid_events_change_nothing(kind: str, data: st.DataObject) -> None:
    cfg = data.draw(configs(kind, data.draw(st.sampled_from(EMITS))), label="config")
    if all(n == "n" for n in cfg.names):
        cfg = dataclasses.replace(cfg, names=(*cfg.names, "s"))  # needs a field
    ops = data.draw(streams(advances=True), label="ops")
    # insert invalid events (at any time, even far ahead) at random places
    bad = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, len(ops)), st.sampled_from(KEYS), invalid_payloads, st.integers(-20, 200)
            ),
            min_size=1,
            max_size=5,
        ),
        label="invalid",
    )
    mixed: list[tuple[int, Op]] = [(2 * i + 1, op) for i, op in enumerate(ops)]  # (arrival, op)
    for pos, key, payload, t in bad:
        mixed.insert(min(pos, len(mixed)), (-1, ("event", key, payload, t)))

    table = cfg.table()
    store, clean_store = InMemoryWindowStore(), InMemoryWindowStore()
    pw, clean = PartitionWindows(table, store, 0), PartitionWindows(table, clean_store, 0)
    for n, (arrival, op) in enumerate(mixed):
        if arrival < 0:
            before, scheduled = copy.deepcopy(raw_store(store, 0)), pw.scheduled
            stream_time = pw.stream_time
            with pytest.raises(InvalidField):
                pw.on_event(op[1], op[2], op[3], 2 * n)
            assert raw_store(store, 0) == before
            assert pw.stream_time == stream_time
            assert pw.scheduled == scheduled
        else:
            assert engine_step(pw, op, arrival) == engine_step(clean, op, arrival)
    assert raw_store(store, 0) == raw_store(clean_store, 0)


def test_count_only_table_accepts_any_payload() -> None:
    table = Config("tumbling", "change", ("n",), grace=0, retention=0, size=10).table()
    pw = PartitionWindows(table, InMemoryWindowStore(), 0)
    assert plain(pw.on_event("a", {}, 1, 0).emissions) == [("a", 0, 10, 1, {"n": 1}, ())]
    assert plain(pw.on_event("a", {"x": "bad"}, 2, 1).emissions) == [("a", 0, 10, 2, {"n": 2}, ())]


# --------------------------------------------------------------------------------------------
# 5. Assignment, by brute force
# --------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(t=st.integers(-1000, 1000), size=st.integers(1, 60), data=st.data())
def test_sliding_and_tumbling_assignment(t: int, size: int, data: st.DataObject) -> None:
    slide = data.draw(st.integers(1, size), label="slide")
    expected = [(s, s + size) for s in range(t - 2 * size, t + 1) if s % slide == 0 and s <= t < s + size]
    got = SlidingWindows(size, slide).windows_for(t)
    assert [tuple(w) for w in got] == expected  # exactly these, earliest start first
    assert len(expected) in (size // slide, -(-size // slide))
    tumbling = [(s, s + size) for s in range(t - 2 * size, t + 1) if s % size == 0 and s <= t < s + size]
    assert len(tumbling) == 1
    assert [tuple(w) for w in TumblingWindows(size).windows_for(t)] == tumbling


# --------------------------------------------------------------------------------------------
# 6. Spec validation
# --------------------------------------------------------------------------------------------

non_positive = st.integers(-100, 0)
negative = st.integers(-100, -1)
ok = st.integers(1, 100)


@given(bad=non_positive)
def test_non_positive_size_or_gap_is_rejected(bad: int) -> None:
    with pytest.raises(ValueError):
        TumblingWindows(bad)
    with pytest.raises(ValueError):
        SlidingWindows(bad, 1)
    with pytest.raises(ValueError):
        SessionWindows(bad)


@given(size=ok, data=st.data())
def test_slide_must_be_positive_and_at_most_size(size: int, data: st.DataObject) -> None:
    with pytest.raises(ValueError):
        SlidingWindows(size, data.draw(st.integers(size + 1, size + 100)))
    with pytest.raises(ValueError):
        SlidingWindows(size, data.draw(non_positive))
    SlidingWindows(size, size)
    SlidingWindows(size, 1)


@given(bad=negative, ok_value=st.integers(0, 100))
def test_negative_grace_or_retention_is_rejected(bad: int, ok_value: int) -> None:
    for make in (
        lambda g, r: TumblingWindows(10, g, r),
        lambda g, r: SlidingWindows(10, 5, g, r),
        lambda g, r: SessionWindows(10, g, r),
    ):
        with pytest.raises(ValueError):
            make(bad, ok_value)
        with pytest.raises(ValueError):
            make(ok_value, bad)
        make(ok_value, ok_value)
        make(0, 0)


# --------------------------------------------------------------------------------------------
# 7. Write-back cache: flushed at commits, dropped by a crash, replayed from the last commit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "emit"), ALL)
@FAST
@given(data=st.data())
def test_write_back_cache_with_commits_and_crashes_continues_exactly(
    kind: str, emit: str, data: st.DataObject
) -> None:
    """The engine on a :class:`WriteBackStore`: ``flush`` at random commits, and at random
    crashes the cache is lost and the ops since the last commit are applied again to a restarted
    engine (their outputs were in the aborted transaction). The committed outputs and the store
    equal an uninterrupted run on a plain store; reads see the cached state."""
    cfg = data.draw(configs(kind, emit), label="config")
    ops = data.draw(streams(advances=True), label="ops")
    whole_store = InMemoryWindowStore()
    whole = PartitionWindows(cfg.table(), whole_store, 0)
    expected = [engine_step(whole, op, i) for i, op in enumerate(ops)]

    inner = InMemoryWindowStore()
    cached = WriteBackStore(inner)
    pw = PartitionWindows(cfg.table(), cached, 0)
    committed: list[Any] = []
    pending: list[Any] = []
    i = 0
    crashes = 0
    while i < len(ops):
        pending.append(engine_step(pw, ops[i], i))
        i += 1
        assert cached.get_stream_time(0) == pw.stream_time
        action = data.draw(st.sampled_from(["go", "go", "commit", "crash"]), label=f"after #{i}")
        if action == "commit" or i == len(ops):
            cached.flush()
            assert not cached.dirty
            committed.extend(pending)
            pending = []
        elif action == "crash" and crashes < 3:
            crashes += 1
            cached.forget()
            i -= len(pending)  # back to the last commit
            pending = []
            pw = PartitionWindows(cfg.table(), cached, 0)
    assert committed == expected
    assert raw_store(inner, 0) == raw_store(whole_store, 0)


def test_write_back_cache_writes_each_changed_window_once_per_flush() -> None:
    inner = InMemoryWindowStore()
    cached = WriteBackStore(inner)
    table = Config("tumbling", "change", ("n",), grace=0, retention=0, size=10).table()
    pw = PartitionWindows(table, cached, 0)
    for arrival in range(5):
        pw.on_event("k", {}, 3, arrival)
    assert inner.get(0, "k") is None, "nothing reaches the store before the flush"
    # the window, its close in the time index, the stream time, the count of open windows
    assert cached.flush() == 4
    assert table.value(next(iter(inner.get(0, "k").windows.values()))) == {"n": 5}
    assert cached.flush() == 0


# --------------------------------------------------------------------------------------------
# 8. emit = "update": one record per changed window per commit, versions without a gap
# --------------------------------------------------------------------------------------------


class Coalesced:
    """The reference for ``emit = "update"``, built on the per-change records of ``"change"``
    (checked against the model above): between two commits, each window's changes become one
    record with its latest value, in the order the windows first changed; ``version`` counts the
    records of a window (a session continues from the largest version it absorbed), and
    ``replaces`` names the absorbed sessions that a record was ever emitted for."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, int, int], int] = {}  # records emitted per window
        self.pending: dict[tuple[str, int, int], tuple[dict[str, Any], list[tuple[int, int]]]] = {}

    def change(self, em: Em) -> None:
        key, start, end, _version, value, replaces = em
        carried: list[tuple[int, int]] = []
        base = self.versions.get((key, start, end), 0)
        for r in replaces:
            gone = (key, *r)
            prior = self.pending.pop(gone, None)  # type: ignore[call-overload]
            emitted = self.versions.pop(gone, 0)  # type: ignore[call-overload]
            base = max(base, emitted)
            if prior is not None:
                carried.extend(prior[1])
            if prior is None or emitted > 0:
                carried.append(r)
        self.versions[(key, start, end)] = base
        held = self.pending.get((key, start, end))
        self.pending[(key, start, end)] = (value, (held[1] if held else []) + carried)

    def commit(self) -> list[Em]:
        out: list[Em] = []
        for (key, start, end), (value, replaces) in self.pending.items():
            version = self.versions[(key, start, end)] = self.versions.get((key, start, end), 0) + 1
            out.append((key, start, end, version, value, tuple(replaces)))
        self.pending.clear()
        return out


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(data=st.data())
def test_update_emits_one_record_per_changed_window_per_commit(kind: str, data: st.DataObject) -> None:
    """``emit = "update"`` on a write-back store, with ``emit_updates`` and ``flush`` at random
    commits, and crashes that lose the cache and replay the ops since the last commit on a
    restarted engine: the committed records equal the per-change records coalesced at the same
    commits, each window's versions run 1..n, and the store equals the per-change engine's apart
    from the versions."""
    cfg = data.draw(configs(kind, "update"), label="config")
    ops = data.draw(streams(advances=True), label="ops")
    changes = PartitionWindows(dataclasses.replace(cfg, emit="change").table(), InMemoryWindowStore(), 0)
    coalesced = Coalesced()

    per_op = [engine_step(changes, op, i)[3] for i, op in enumerate(ops)]  # per-change records
    inner = InMemoryWindowStore()
    cached = WriteBackStore(inner)
    pw = PartitionWindows(cfg.table(), cached, 0)
    committed: list[Em] = []
    expected: list[Em] = []
    i, crashes, last_commit = 0, 0, 0
    while i < len(ops):
        got = engine_step(pw, ops[i], i)
        assert got[3] == [], "emit = update emits nothing before the commit"
        i += 1
        action = data.draw(st.sampled_from(["go", "go", "commit", "crash"]), label=f"after #{i}")
        if action == "commit" or i == len(ops):
            committed.extend(plain(pw.emit_updates()))
            for records in per_op[last_commit:i]:
                for em in records:
                    coalesced.change(em)
            expected.extend(coalesced.commit())
            cached.flush()
            assert pw.updated == 0 and not cached.dirty
            last_commit = i
        elif action == "crash" and crashes < 3:
            crashes += 1
            cached.forget()
            i = last_commit  # the ops since the last commit are applied again
            pw = PartitionWindows(cfg.table(), cached, 0)
    assert committed == expected
    versions: dict[tuple[str, int, int], list[int]] = {}
    for key, start, end, version, *_ in committed:
        versions.setdefault((key, start, end), []).append(version)
    for window, seen in versions.items():
        assert seen == list(range(seen[0], seen[0] + len(seen))), window
    ref_view = {k: {(w.start, w.end): w.states for w in kw.in_order()} for k, kw in changes.store.items(0)}
    got_view = {k: {(w.start, w.end): w.states for w in kw.in_order()} for k, kw in inner.items(0)}
    assert got_view == ref_view


def test_update_example_a_session_absorbed_before_its_first_record() -> None:
    """Sessions (gap 10): [0,10) is emitted at a commit; [20,30) opens and, before the next
    commit, [15,25) joins both into [0,30). One record: version 2, replacing only [0,10), the
    one session the consumer has seen."""
    table = Config("session", "update", ("n",), grace=100, retention=0, gap=10).table()
    pw = PartitionWindows(table, InMemoryWindowStore(), 0)
    pw.on_event("a", {}, 0, 0)
    pw.on_event("a", {}, 3, 1)
    assert plain(pw.emit_updates()) == [("a", 0, 13, 1, {"n": 2}, ())]
    pw.on_event("a", {}, 20, 2)
    pw.on_event("a", {}, 21, 3)
    pw.on_event("a", {}, 12, 4)
    assert plain(pw.emit_updates()) == [("a", 0, 31, 2, {"n": 5}, ((0, 13),))]
    assert pw.emit_updates() == ()
