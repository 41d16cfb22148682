"""Per-contender figures from its runs: the median of the correct runs (with min and max), CPU
per event, peak RSS and state on disk, and throughput ratios to ``limit``, ``faust`` and to the
contender's own Quix row (the Quix contender doing the same work, if any). A contender with any
run that is not ``ok`` is reported with that status instead of figures (a wrong result is never
timed)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bench.run import RunResult

BASELINES = ("limit", "faust")
PEER = "peer"
"""The ratio to the contender's Quix row, among :attr:`ContenderSummary.ratios`."""


@dataclass(frozen=True)
class RowLabels:
    """What a row is, for the report: its windows, its input, what it writes, its Quix row."""

    window: str
    input: str = ""
    output: str = ""
    peer: str | None = None


@dataclass(frozen=True)
class ContenderSummary:
    contender: str
    window: str
    status: str
    """``ok``, or the first bad status among its runs (``failed``, ``timeout``, ``crashed``)."""
    runs: int
    detail: str = ""
    median_eps: float = 0.0
    min_eps: float = 0.0
    max_eps: float = 0.0
    cpu_us_per_event: float = 0.0
    peak_rss_bytes: int = 0
    state_bytes: int = 0
    ratios: tuple[tuple[str, float | None], ...] = ()
    """Median events/s divided by each baseline's and by the peer's (``PEER``; None when that
    contender has no figure or there is none)."""
    input: str = ""
    output: str = ""
    peer: str | None = None


def summarize(results: Sequence[RunResult], labels: Mapping[str, RowLabels]) -> list[ContenderSummary]:
    """One summary per contender, in the order of first appearance in ``results``."""
    order = list(dict.fromkeys(r.contender for r in results))
    plain = [
        _one(name, labels.get(name, RowLabels("")), [r for r in results if r.contender == name])
        for name in order
    ]
    medians = {s.contender: s.median_eps for s in plain if s.status == "ok"}

    def ratio(s: ContenderSummary, other: str | None) -> float | None:
        return s.median_eps / medians[other] if other is not None and medians.get(other) else None

    return [
        replace(s, ratios=(*((b, ratio(s, b)) for b in BASELINES), (PEER, ratio(s, s.peer))))
        if s.status == "ok"
        else s
        for s in plain
    ]


def _one(name: str, labels: RowLabels, runs: list[RunResult]) -> ContenderSummary:
    named = ContenderSummary(
        name, labels.window, "ok", len(runs), input=labels.input, output=labels.output, peer=labels.peer
    )
    bad = [r for r in runs if r.status != "ok"]
    if bad:
        first = bad[0]
        detail = f"run {first.repetition}: {first.detail}" if first.detail else f"run {first.repetition}"
        return replace(named, status=first.status, detail=detail)
    rates = [r.events_per_s for r in runs]
    return replace(
        named,
        median_eps=statistics.median(rates),
        min_eps=min(rates),
        max_eps=max(rates),
        cpu_us_per_event=statistics.median(r.cpu_us_per_event for r in runs),
        peak_rss_bytes=max(r.peak_rss_bytes for r in runs),
        state_bytes=int(statistics.median(r.state_bytes for r in runs)),
    )
