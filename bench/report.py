"""The benchmark's report: a plain-text table for the terminal and ``docs/benchmarks.md``
(tables, chart, machine, method and how to reproduce). Both are built from the summaries only.

Each row says what its contender reads (``input``) and writes (``output``); a continust row that
does the same work as a Quix row has its throughput divided by that row's ("vs its Quix row"):
state only (``continust-tumbling-state`` / ``quix-state``), final emission
(``continust-tumbling-final`` / ``quix-final``), and coalesced updates per commit against one
record per event (``continust-tumbling`` / ``quix``), which is not the same output."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.doc_sections import keep_sections
from bench.latency import LatencyResult
from bench.summary import PEER, ContenderSummary

HEADERS = (
    "contender",
    "window",
    "input",
    "output",
    "events/s (median)",
    "min-max",
    "CPU µs/event",
    "vs limit",
    "vs faust",
    "vs its Quix row",
    "peak RSS",
    "state on disk",
)
LATENCY_HEADERS = ("contender", "input rate", "achieved", "p50", "p99", "events with a readable output")


@dataclass(frozen=True)
class RunDescription:
    """What was run, for the report's header."""

    date: str
    events: int
    keys: int
    partitions: int
    repetitions: int
    span_s: float
    command: str


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:,.0f}x"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def _peer_ratio(s: ContenderSummary, value: float | None) -> str:
    return "-" if s.peer is None else f"{_ratio(value)} ({s.peer})"


def throughput_rows(summaries: Sequence[ContenderSummary]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in summaries:
        if s.status != "ok":
            shown = "FAILED" if s.status == "failed" else s.status.upper()
            rows.append((s.contender, s.window, s.input, s.output, shown, *(["-"] * (len(HEADERS) - 5))))
            continue
        ratios = dict(s.ratios)
        rows.append(
            (
                s.contender,
                s.window,
                s.input,
                s.output,
                f"{s.median_eps:,.0f}",
                f"{s.min_eps:,.0f}-{s.max_eps:,.0f}",
                f"{s.cpu_us_per_event:,.1f}",
                _ratio(ratios.get("limit")),
                _ratio(ratios.get("faust")),
                _peer_ratio(s, ratios.get(PEER)),
                _mib(s.peak_rss_bytes),
                _mib(s.state_bytes) if s.state_bytes else "-",
            )
        )
    return rows


def problem_lines(summaries: Sequence[ContenderSummary], latencies: Sequence[LatencyResult]) -> list[str]:
    """Why a contender has no figures, or why its latency is incomplete: one line each."""
    lines = [f"{s.contender}: {s.status}, {s.detail}" for s in summaries if s.status != "ok"]
    lines += [
        f"{r.contender} latency: {r.detail}"
        if r.status == "ok"
        else f"{r.contender} latency: {r.status}, {r.detail}"
        for r in latencies
        if r.detail
    ]
    return lines


def _ms(value: float, limit_s: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return f"> {limit_s:.0f} s after the end"
    return f"{value:,.0f} ms"


def latency_rows(results: Sequence[LatencyResult], drain_s: float) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        if r.status != "ok":
            rows.append((r.contender, f"{r.rate:,}/s", r.status.upper(), "-", "-", "-"))
            continue
        rows.append(
            (
                r.contender,
                f"{r.rate:,}/s for {r.seconds:.0f} s",
                f"{r.achieved_rate:,.0f}/s",
                _ms(r.percentile(0.5), drain_s),
                _ms(r.percentile(0.99), drain_s),
                f"{r.readable:,} of {r.produced:,}",
            )
        )
    return rows


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out.extend("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows)
    return "\n".join(out)


def write_markdown(
    path: Path,
    run: RunDescription,
    summaries: Sequence[ContenderSummary],
    latencies: Sequence[LatencyResult],
    drain_s: float,
    machine: dict[str, str],
    chart: Path | None,
) -> None:
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); every figure below is from the run of "
        f"{run.date}. Issue 5 sets the targets.",
        "",
        f"**The job**: {run.events:,} JSON events `{{user, ts, amount}}`, {run.keys:,} keys, event time "
        f"spanning {run.span_s:,.0f} s, slightly out of order (never beyond the 5 s grace), preloaded "
        f"into topics of {run.partitions} partitions: one whose record key is `user` (all events of a "
        "user on one partition), read by every contender but one, and, for "
        "`continust-tumbling-repartition`, one with the same events under random record keys (the "
        "events of a user spread over every partition). Per key and window: the count of events and "
        f"the sum of `amount`. Each contender ran {run.repetitions} times, alternating with the others, "
        "each time with a fresh consumer group, state directory and output topic, reading its input as "
        "a backlog. Every run's results were checked against the reference aggregation computed from "
        "the events (see below for how each contender's results are read back); a contender with a "
        "wrong result is shown as FAILED and not timed.",
        "",
        "**The rows**: `input` is the topic a contender reads, `output` what it writes to an output "
        "topic. Three pairs do the same work on continust and on Quix Streams (both exactly-once, "
        "RocksDB state, tumbling 10 s windows, grace 5 s); `vs its Quix row` divides the continust "
        "row's throughput by its pair's:",
        "",
        "- **state only**: `continust-tumbling-state` against `quix-state`: the windowed aggregation "
        "and its state (changelog, offsets) committed exactly-once, no output topic.",
        "- **final emission**: `continust-tumbling-final` against `quix-final`: one record per window, "
        "written when the window closes (stream time of its partition at `end + grace`).",
        '- **coalesced against per event**: `continust-tumbling` (`emit = "update"`: per commit, one '
        "record per changed window) against `quix` (`.current()`: one record per event). Not the same "
        "output: Quix has no per-commit coalescing, so this row also measures that difference.",
        "",
        "## Throughput",
        "",
        markdown_table(HEADERS, throughput_rows(summaries)),
        "",
    ]
    problems = problem_lines(summaries, latencies)
    if problems:
        parts += ["Problems:", "", *(f"- {line}" for line in problems), ""]
    if chart is not None:
        parts += [f"![events per second per contender]({chart.name})", ""]
    if latencies:
        parts += [
            "## End-to-end latency",
            "",
            "Input produced at a fixed rate while the contender runs; latency of an event = when the "
            "first output record reflecting it (its window's record with a count reaching it) became "
            "readable with `read_committed` - when the event was handed to the producer. Percentiles "
            "are over all produced events; an event with no readable output "
            f"{drain_s:.0f} s after production stopped counts as infinitely late.",
            "",
            markdown_table(LATENCY_HEADERS, latency_rows(latencies, drain_s)),
            "",
        ]
    parts += [
        "## Contenders",
        "",
        "- `limit`: raw aiokafka consumer, `getmany` batches, orjson, a Python dict of per-key "
        "per-window count and sum: no state store, no commits, no output. The ceiling.",
        "- `faust`: a plain faust-streaming app, windowed `Table` (tumbling 10 s, by the event's `ts`) "
        "on the RocksDB store (rocksdict), updated event by event; at-least-once (Faust's default).",
        '- `quix*`: Quix Streams `Application`, RocksDB state, `processing_guarantee="exactly-once"`, '
        'tumbling 10 s window (grace 5 s) by `ts`, `.agg(n=Count(), total=Sum("amount"))`; Quix\'s '
        "default commit interval (5 s). `quix`: `.current()` to an output topic, one record per event. "
        '`quix-final`: `.final(closing_strategy="partition")` to an output topic (a partition\'s '
        "largest `ts` closes its windows, as in continust; Quix's default closes a key's windows by that "
        "key's events only). `quix-state`: `.current()` with no sink, so nothing is written but the "
        "state.",
        "- `continust-*`: a continust worker (`agents.cli worker`) on a pipeline with one source keyed "
        'by `user`, timestamp `ts`, one table `aggregate = { n = "count()", total = "sum(amount)" }`, '
        "exactly_once (commit interval 1 s); windows tumbling 10 s grace 5 s, sliding 60 s every 10 s "
        "grace 5 s (6 windows per event), session gap 30 s grace 5 s. "
        '`continust-tumbling`, `-sliding`, `-session`, `-repartition`: `emit = "update"` (per commit, '
        "one record per changed window with its latest value, as Kafka Streams' record cache does) to "
        'an output topic. `continust-tumbling-final`: `emit = "final"` to an output topic. '
        "`continust-tumbling-state`: no output topic. Their input is keyed by `user`, so the source is "
        "declared `partitioned_by_key = true` and the tables read the input directly, as Quix and Faust "
        "do. `continust-tumbling-repartition` reads the random-keyed copy instead: every event goes "
        "through the source's repartition topic (a second fetch, decode and transactional write per "
        "event), and each table partition merges the events of every input partition, whose backlogs "
        "are read at different speeds; its windows must still be exact, with no late event.",
        "",
        "## How results are checked",
        "",
        "- `limit`, `faust`: the job writes its dict / table after the last event to a results file.",
        "- `quix-state`: the job keeps, per window, the latest value `.current()` gave (a dict "
        "assignment per event, inside the timed interval) and writes them to a results file. Quix's "
        "state cannot be read back instead: Quix deletes a window from RocksDB once it closes.",
        "- `continust-tumbling-state`: once its group has committed all of the input, and before the "
        "worker is stopped, the harness reads every key's windows from the worker's HTTP API "
        "(`GET /api/tables/bench/keys/{key}`). So that closed windows are still there, this table keeps "
        "them (`retention` of 365 days of event time), where the other continust tables delete a "
        "window once it closes, as Quix does.",
        "- output topics: read with `read_committed` after the contender stopped, the last record of "
        "each window. `quix-final` and `continust-tumbling-final` are checked against the windows of "
        "the reference that are closed at the end of the input (`end + grace` at or before the largest "
        "`ts` of the key's partition), and each must have exactly one record.",
        "- every continust worker: `continust_late_events_total` and `continust_invalid_events_total` "
        "must be 0 when it has consumed its input.",
        "",
        "## What is measured",
        "",
        "- **events/s**: input events over the time from the contender's first processed event to its "
        "last (for continust: until its consumer group has committed all of the input and repartition "
        "topics, so up to one commit interval after the last event). Startup, group join and result "
        "checking are not timed. Median of the runs, with min-max.",
        "- **CPU µs/event**: user + system CPU time of the contender's process over the same interval, "
        "per input event (the broker's CPU is not counted).",
        "- **vs limit / faust**: median events/s divided by that contender's median. **vs its Quix "
        "row**: divided by the median of the Quix contender named in brackets, which does the same "
        "work (see the rows above).",
        "- **peak RSS**: the process's `VmHWM`; the largest over the runs.",
        "- **state on disk**: the contender's state directory after it stopped (median).",
        "",
        "## Machine",
        "",
        markdown_table(("", ""), [(k, v) for k, v in machine.items()]),
        "",
        "The machine is shared: other work (such as a test suite) running at the same time lowers "
        "the figures.",
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench        # defaults: 1,000,000 events, 1000 keys, 8 partitions, 3 repetitions; shapes",
        'make bench BENCH_ARGS="--events 100000 --repetitions 1" SHAPES_ARGS="--scale 0.1"   # a shorter run',
        "```",
        "",
        "`make bench` creates the virtualenv with the `bench` extra (Quix Streams and matplotlib), "
        "starts the local broker on 127.0.0.1:9092 unless one answers there (and stops it afterwards), "
        'and writes this file and the chart (`python -m bench`), then the section "State shapes" '
        "(`python -m bench.shapes`; the other sections of this file that `python -m bench` does not "
        "write are kept). Options: `.venv/bin/python -m bench --help` (`--events`, "
        "`--repetitions`, `--contenders`, `--port`, `--latency-rate`, ...), `.venv/bin/python -m "
        "bench.shapes --help` (`--scale`, `--shapes`, `--repetitions`, `--port`). This run:",
        "",
        "```sh",
        run.command,
        "```",
        "",
    ]
    text = "\n".join(parts)
    if path.exists():  # the sections other commands write (bench.shapes, bench.restart_time)
        text = keep_sections(text, path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
