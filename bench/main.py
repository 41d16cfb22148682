"""``python -m bench``: the whole benchmark, start to report.

1. the broker: the one answering on the port, or the local one started (and stopped after);
2. N events generated, the reference aggregations computed (for final emission: the windows
   closed at the end of the input), the input topics preloaded: keyed by ``user``, and with
   random keys if a selected contender reads that (:data:`bench.events.RANDOM_KEYS`);
3. every contender, alternating, ``--repetitions`` times (:mod:`bench.run`);
4. latency at a fixed input rate (:mod:`bench.latency`);
5. the table on stdout, ``docs/benchmarks.md`` and its chart; the run's topics deleted.

Progress is logged as key=value lines on stderr. Exit status 0 when every run was correct and
finished, 1 otherwise (the report is written either way).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
import time
import uuid

from bench.broker import BenchBroker
from bench.chart import write_chart
from bench.contenders import CONTENDERS, Contender, RunPlan
from bench.events import RANDOM_KEYS, USER_KEYS, Event, EventPlan
from bench.latency import LatencyResult, continust_output, measure_latency, quix_output
from bench.machine import describe
from bench.options import Options, parse_options
from bench.preload import preload
from bench.report import (
    HEADERS,
    LATENCY_HEADERS,
    RunDescription,
    latency_rows,
    problem_lines,
    text_table,
    throughput_rows,
    write_markdown,
)
from bench.run import RunResult, run_contender
from bench.summary import RowLabels, summarize
from bench.topics import delete_run_topics
from bench.windowing import Results, WindowShape, closed_only, reference
from streams.telemetry.logfmt import configure_logging, logfmt

log = logging.getLogger("continust.bench")

INPUT_LABELS = {USER_KEYS: "keyed by user", RANDOM_KEYS: "random keys"}

Check = tuple[WindowShape, bool]
"""What a contender's results are checked against: its windows, and whether only the closed ones."""


def _check(contender: Contender) -> Check:
    return contender.shape, contender.final


def _references(events: list[Event], checks: set[Check], partitions: int) -> dict[Check, Results]:
    refs: dict[Check, Results] = {}
    full: dict[WindowShape, Results] = {}
    for shape, final in sorted(checks, key=lambda c: (c[0].kind, c[1])):
        started = time.monotonic()
        if shape not in full:
            full[shape] = reference(shape, events)
        refs[(shape, final)] = closed_only(shape, full[shape], events, partitions) if final else full[shape]
        log.info(
            logfmt(
                "bench.reference",
                window=shape.describe(),
                closed_only=final,
                windows=len(refs[(shape, final)]),
                seconds=round(time.monotonic() - started, 1),
            )
        )
    return refs


def input_topic(run_id: str, keys: str) -> str:
    """The run's input topic of the events under record keys ``keys``."""
    return f"bench-{run_id}-input" if keys == USER_KEYS else f"bench-{run_id}-input-{keys}"


async def _bench(opts: Options, bootstrap: str, run_id: str) -> int:
    plan = EventPlan(count=opts.events, keys=opts.keys, spacing_ms=opts.event_spacing_ms)
    started = time.monotonic()
    start_ms = plan.start_ms(int(time.time() * 1000))
    events = list(plan.events(start_ms))
    log.info(
        logfmt(
            "bench.events",
            events=len(events),
            keys=opts.keys,
            span_s=opts.events * opts.event_spacing_ms / 1000,
            seconds=round(time.monotonic() - started, 1),
        )
    )
    contenders = [CONTENDERS[name] for name in opts.contenders]
    refs = _references(events, {_check(c) for c in contenders}, opts.partitions)
    for keys in sorted({c.input_keys for c in contenders}, key=[USER_KEYS, RANDOM_KEYS].index):
        await preload(bootstrap, input_topic(run_id, keys), opts.partitions, events, keys)
    del events

    results: list[RunResult] = []
    total = opts.repetitions * len(contenders)
    for rep in range(1, opts.repetitions + 1):
        for contender in contenders:
            run = RunPlan(
                run_id=run_id,
                contender=contender.name,
                repetition=rep,
                bootstrap=bootstrap,
                topic=input_topic(run_id, contender.input_keys),
                partitions=opts.partitions,
                events=opts.events,
                workdir=opts.workdir / run_id / f"{contender.name}-{rep}",
                keys=tuple(plan.users()),
            )
            log.info(
                logfmt("bench.progress", run=len(results) + 1, of=total, contender=contender.name, rep=rep)
            )
            results.append(
                await run_contender(
                    contender, run, refs[_check(contender)], opts.run_timeout_s(), keep_state=opts.keep
                )
            )

    latencies: list[LatencyResult] = []
    for name in opts.latency_contenders:
        contender = CONTENDERS[name]
        run = RunPlan(
            run_id=run_id,
            contender=f"{name}-latency",
            repetition=1,
            bootstrap=bootstrap,
            topic=f"bench-{run_id}-{name}-latency-input",
            partitions=opts.partitions,
            events=0,
            workdir=opts.workdir / run_id / f"{name}-latency",
        )
        parse = quix_output if name == "quix" else continust_output
        latencies.append(
            await measure_latency(
                contender,
                run,
                parse,
                rate=opts.latency_rate,
                seconds=opts.latency_seconds,
                users=plan.users(),
                grace_ms=plan.grace_ms,
                drain_s=opts.latency_drain_s,
            )
        )

    labels = {
        c.name: RowLabels(c.shape.describe(), INPUT_LABELS[c.input_keys], c.output, c.peer)
        for c in contenders
    }
    summaries = summarize(results, labels)
    print()
    print(text_table(HEADERS, throughput_rows(summaries)))
    if latencies:
        print()
        print(text_table(LATENCY_HEADERS, latency_rows(latencies, opts.latency_drain_s)))
    problems = problem_lines(summaries, latencies)
    if problems:
        print()
        print("\n".join(problems))
    print()
    description = RunDescription(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        events=opts.events,
        keys=opts.keys,
        partitions=opts.partitions,
        repetitions=opts.repetitions,
        span_s=opts.events * opts.event_spacing_ms / 1000,
        command=shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
    )
    write_chart(
        opts.chart, summaries, f"{opts.events:,} events, {opts.keys:,} keys, {opts.partitions} partitions"
    )
    write_markdown(opts.out, description, summaries, latencies, opts.latency_drain_s, describe(), opts.chart)
    log.info(logfmt("bench.report", markdown=opts.out, chart=opts.chart))
    if not opts.keep:
        await delete_run_topics(bootstrap, run_id)
    bad = [s.contender for s in summaries if s.status != "ok"] + [
        r.contender for r in latencies if r.status != "ok"
    ]
    if bad:
        log.warning(logfmt("bench.not_ok", contenders=",".join(bad)))
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    configure_logging("info")
    # aiokafka logs leader elections of freshly created topics as errors; results are checked
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run_id = uuid.uuid4().hex[:8]
    log.info(logfmt("bench.start", run=run_id, events=opts.events, repetitions=opts.repetitions))
    broker = BenchBroker.ensure(opts.port)
    try:
        return asyncio.run(_bench(opts, broker.bootstrap, run_id))
    finally:
        broker.release()
