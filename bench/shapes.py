"""``python -m bench.shapes``: the state-only pair (``quix-state`` against
``continust-tumbling-state``) on three input shapes, which load the state differently:

- ``few-keys``: 1,000,000 events, 1,000 keys, 100 windows per key;
- ``many-windows``: 500,000 events, 1,000 keys, 500 windows per key;
- ``many-keys``: 500,000 events, 100,000 keys, 5 windows per key.

Every shape is the same job as the main benchmark's state-only rows: tumbling 10 s windows
(grace 5 s), count and sum per key and window by event time, exactly-once, nothing written but
the state, every run's windows checked against the reference (:mod:`bench.run`). The users take
turns (:attr:`bench.events.EventPlan.in_turn`): each sends one event every ``keys * spacing``
of event time, over a span of ``span_windows`` windows, so the windows per key are exact (up to
the out-of-order fifth of the events, which may fall into the previous window). ``--scale``
multiplies events and keys alike, keeping the windows per key and the events per window.

continust's table keeps its windows for 30 days of event time (all of them, here) so that they
can be read back over HTTP; Quix's results come from its job's results file, as in the main
benchmark (:mod:`bench.contenders`).

Per shape and contender: events/s (median of the runs), peak RSS and the state directory's size
after the run; continust's events/s over Quix's on the same shape; and how continust's (and
Quix's) events/s change from ``few-keys`` to the other two shapes. Printed, and written as the
section "State shapes" of ``docs/benchmarks.md`` (the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.broker import BenchBroker
from bench.contenders import Contender, Continust, Quix, RunPlan
from bench.doc_sections import write_section
from bench.events import USER_KEYS, EventPlan
from bench.preload import preload
from bench.report import markdown_table, text_table
from bench.run import RunResult, run_contender
from bench.summary import PEER, ContenderSummary, RowLabels, summarize
from bench.topics import delete_run_topics
from bench.windowing import TUMBLING, reference
from streams.telemetry.logfmt import configure_logging, logfmt

log = logging.getLogger("continust.bench")

SECTION = "State shapes"
RETENTION = "30d"
"""Event time continust's state-only table keeps its windows (longer than any shape's span)."""


@dataclass(frozen=True)
class StateShape:
    """``events`` events of ``keys`` users taking turns, over ``span_windows`` tumbling windows
    of event time."""

    name: str
    events: int
    keys: int
    span_windows: int

    def plan(self, scale: float = 1.0) -> EventPlan:
        """The events of this shape, ``scale`` times as many events and keys (at least one each);
        event spacing such that the events span ``span_windows`` windows."""
        events = max(1, round(self.events * scale))
        keys = max(1, round(self.keys * scale))
        spacing = max(1, round(self.span_windows * TUMBLING.size_ms / events))
        return EventPlan(count=events, keys=keys, spacing_ms=spacing, in_turn=True)

    def windows_per_key(self, scale: float = 1.0) -> int:
        """The windows each key's events fall into (ignoring the out-of-order events): one per
        event when a key's events are a window or more apart, else every window of the span."""
        plan = self.plan(scale)
        per_key = -(-plan.count // plan.keys)
        span = -(-plan.count * plan.spacing_ms // TUMBLING.size_ms)
        return min(per_key, span)


SHAPES = {
    s.name: s
    for s in (
        StateShape("few-keys", events=1_000_000, keys=1_000, span_windows=100),
        StateShape("many-windows", events=500_000, keys=1_000, span_windows=500),
        StateShape("many-keys", events=500_000, keys=100_000, span_windows=100),
    )
}
BASE = "few-keys"
"""The shape the others' throughput is divided by."""

QUIX = Quix("quix-state", emit="none", output="state only")
CONTINUST = Continust(
    "continust-tumbling-state", TUMBLING, writes_output=False, peer=QUIX.name, retention=RETENTION
)
PAIR: tuple[Contender, Contender] = (QUIX, CONTINUST)


@dataclass(frozen=True)
class ShapeRun:
    """What one shape's runs gave: its input and each contender's summary."""

    shape: str
    events: int
    keys: int
    windows: int
    """Windows in the reference (over all keys)."""
    summaries: tuple[ContenderSummary, ...]

    def summary(self, contender: str) -> ContenderSummary | None:
        return next((s for s in self.summaries if s.contender == contender), None)

    def events_per_s(self, contender: str) -> float | None:
        s = self.summary(contender)
        return s.median_eps if s is not None and s.status == "ok" else None


HEADERS = (
    "shape",
    "events",
    "keys",
    "windows (per key)",
    "contender",
    "events/s",
    "min-max",
    "peak RSS (MiB)",
    "state on disk (MiB)",
    "continust / Quix",
)
SCALING_HEADERS = ("events/s ratio", "continust", "Quix")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _divide(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def shape_rows(runs: Sequence[ShapeRun]) -> list[tuple[str, ...]]:
    """One row per shape and contender."""
    rows: list[tuple[str, ...]] = []
    for run in runs:
        per_key = run.windows / run.keys if run.keys else 0.0
        for s in run.summaries:
            input_cells = (run.shape, f"{run.events:,}", f"{run.keys:,}", f"{run.windows:,} ({per_key:,.1f})")
            if s.status != "ok":
                shown = "FAILED" if s.status == "failed" else s.status.upper()
                rows.append((*input_cells, s.contender, shown, "-", "-", "-", "-"))
                continue
            peer = dict(s.ratios).get(PEER) if s.peer is not None else None
            rows.append(
                (
                    *input_cells,
                    s.contender,
                    f"{s.median_eps:,.0f}",
                    f"{s.min_eps:,.0f}-{s.max_eps:,.0f}",
                    _mib(s.peak_rss_bytes),
                    _mib(s.state_bytes),
                    _ratio(peer) if s.peer is not None else "-",
                )
            )
    return rows


def scaling_rows(runs: Sequence[ShapeRun]) -> list[tuple[str, ...]]:
    """Each other shape's events/s over ``few-keys``'s, for continust and for Quix."""
    by_shape = {r.shape: r for r in runs}
    base = by_shape.get(BASE)
    rows: list[tuple[str, ...]] = []
    for run in runs:
        if run.shape == BASE or base is None:
            continue
        rows.append(
            (
                f"{run.shape} / {BASE}",
                _ratio(_divide(run.events_per_s(CONTINUST.name), base.events_per_s(CONTINUST.name))),
                _ratio(_divide(run.events_per_s(QUIX.name), base.events_per_s(QUIX.name))),
            )
        )
    return rows


def problem_lines(runs: Sequence[ShapeRun]) -> list[str]:
    return [
        f"{r.shape}, {s.contender}: {s.status}, {s.detail}"
        for r in runs
        for s in r.summaries
        if s.status != "ok"
    ]


def section_body(
    runs: Sequence[ShapeRun], command: str, date: str, scale: float, repetitions: int, partitions: int
) -> str:
    """The markdown of the section "State shapes" (without its heading)."""
    shapes = ", ".join(
        f"`{s.name}` ({s.events:,} events, {s.keys:,} keys, {s.windows_per_key():,} windows per key)"
        for s in SHAPES.values()
    )
    scaled = "" if scale == 1 else f" This run: events and keys scaled by {scale:g}."
    parts = [
        f"Written by `python -m bench.shapes` (run by `make bench`); the run of {date}. The state-only "
        "pair (`quix-state` against `continust-tumbling-state`: tumbling 10 s windows, grace 5 s, count "
        "and sum by event time, exactly-once, no output topic) on three inputs that load the state "
        f"differently: {shapes}. The users take turns, so every key has events in each of its windows; "
        "a fifth of the events are out of order (never beyond the grace). Input keyed by `user`, "
        f"{partitions} partitions, read as a backlog; continust's source is `partitioned_by_key`, its "
        f'table keeps windows for `retention = "{RETENTION}"` of event time (every window, so they '
        "can be read back and checked over HTTP), Quix deletes closed windows from its state. "
        f"Each contender ran {repetitions} time(s) per shape, alternating; every run's windows were "
        f"checked against the reference.{scaled}",
        "",
        "events/s from the first processed event to the last (median of the runs); peak RSS: the "
        "process's `VmHWM`, largest over the runs; state on disk: the contender's state directory "
        "after it stopped (median); continust / Quix: continust's events/s over Quix's on the same "
        "shape.",
        "",
        markdown_table(HEADERS, shape_rows(runs)),
        "",
        "How throughput changes with the shape of the state (events/s of the shape over events/s of "
        f"`{BASE}`, same contender):",
        "",
        markdown_table(SCALING_HEADERS, scaling_rows(runs)),
        "",
    ]
    problems = problem_lines(runs)
    if problems:
        parts += ["Problems:", "", *(f"- {line}" for line in problems), ""]
    parts += ["```sh", command, "```", ""]
    return "\n".join(parts)


@dataclass(frozen=True)
class ShapeOptions:
    shapes: tuple[str, ...]
    scale: float
    repetitions: int
    partitions: int
    port: int | None
    out: Path
    workdir: Path
    min_rate: float
    keep: bool


def parse_options(argv: list[str] | None = None) -> ShapeOptions:
    p = argparse.ArgumentParser(
        prog="python -m bench.shapes",
        description="quix-state against continust-tumbling-state on three state shapes. "
        "Exits 1 when a run's results are wrong or it did not finish.",
    )
    p.add_argument(
        "--shapes",
        default=",".join(SHAPES),
        help=f"comma-separated, in run order (default: {','.join(SHAPES)})",
    )
    p.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every shape's events and keys (default 1)"
    )
    p.add_argument("--repetitions", type=int, default=1, help="runs per contender and shape (default 1)")
    p.add_argument("--partitions", type=int, default=8, help="input topic partitions (default 8)")
    p.add_argument("--port", type=int, default=None, help="broker port (default: the CLI's, 9092)")
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="report (its section only)")
    p.add_argument("--workdir", type=Path, default=Path(".data/bench"), help="state and logs")
    p.add_argument(
        "--min-rate",
        type=float,
        default=200.0,
        help="a run taking longer than 180 s + events / this is stopped as a timeout (default 200)",
    )
    p.add_argument("--keep", action="store_true", help="keep the run's topics and state directories")
    a = p.parse_args(argv)
    shapes = tuple(n.strip() for n in a.shapes.split(",") if n.strip())
    unknown = [n for n in shapes if n not in SHAPES]
    if unknown or not shapes:
        p.error(f"--shapes: unknown {', '.join(unknown) or '(none given)'}; allowed: {', '.join(SHAPES)}")
    if a.scale <= 0 or a.repetitions <= 0 or a.partitions <= 0:
        p.error("--scale, --repetitions and --partitions must be positive")
    return ShapeOptions(
        shapes, a.scale, a.repetitions, a.partitions, a.port, a.out, a.workdir, a.min_rate, a.keep
    )


async def _shape(opts: ShapeOptions, shape: StateShape, bootstrap: str, run_id: str) -> ShapeRun:
    plan = shape.plan(opts.scale)
    events = list(plan.events(plan.start_ms(int(time.time() * 1000))))
    expected = reference(TUMBLING, events)
    users = tuple(sorted({e.user for e in events}))
    log.info(
        logfmt(
            "bench.shape",
            shape=shape.name,
            events=len(events),
            keys=len(users),
            windows=len(expected),
            spacing_ms=plan.spacing_ms,
        )
    )
    shape_id = f"{run_id}-{shape.name}"
    topic = f"bench-{shape_id}-input"
    await preload(bootstrap, topic, opts.partitions, events, USER_KEYS)
    del events
    results: list[RunResult] = []
    for rep in range(1, opts.repetitions + 1):
        for contender in PAIR:
            run = RunPlan(
                run_id=shape_id,
                contender=contender.name,
                repetition=rep,
                bootstrap=bootstrap,
                topic=topic,
                partitions=opts.partitions,
                events=plan.count,
                workdir=opts.workdir / run_id / shape.name / f"{contender.name}-{rep}",
                keys=users,
            )
            timeout = 180.0 + plan.count / opts.min_rate
            results.append(await run_contender(contender, run, expected, timeout, keep_state=opts.keep))
    labels = {c.name: RowLabels(c.shape.describe(), "keyed by user", c.output, c.peer) for c in PAIR}
    return ShapeRun(shape.name, plan.count, len(users), len(expected), tuple(summarize(results, labels)))


async def _bench(opts: ShapeOptions, bootstrap: str, run_id: str) -> list[ShapeRun]:
    runs = []
    try:
        for name in opts.shapes:
            runs.append(await _shape(opts, SHAPES[name], bootstrap, run_id))
    finally:
        if not opts.keep:
            await delete_run_topics(bootstrap, run_id)
    return runs


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    configure_logging("info")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run_id = uuid.uuid4().hex[:8]
    log.info(logfmt("bench.shapes.start", run=run_id, shapes=",".join(opts.shapes), scale=opts.scale))
    broker = BenchBroker.ensure(opts.port)
    try:
        runs = asyncio.run(_bench(opts, broker.bootstrap, run_id))
    finally:
        broker.release()
    print()
    print(text_table(HEADERS, shape_rows(runs)))
    print()
    print(text_table(SCALING_HEADERS, scaling_rows(runs)))
    problems = problem_lines(runs)
    if problems:
        print()
        print("\n".join(problems))
    print()
    command = shlex.join(["python", "-m", "bench.shapes", *(sys.argv[1:] if argv is None else argv)])
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_section(
        opts.out, SECTION, section_body(runs, command, date, opts.scale, opts.repetitions, opts.partitions)
    )
    log.info(logfmt("bench.shapes.report", markdown=opts.out, section=SECTION))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
