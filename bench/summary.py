"""Per-contender figures from its runs: the median of the correct runs (with min and max), CPU
per event, peak RSS and state on disk, and throughput ratios to ``limit``, ``quix`` and
``faust``. A contender with any run that is not ``ok`` is reported with that status instead
of figures (a wrong result is never timed)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.run import RunResult

BASELINES = ("limit", "quix", "faust")


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
    """Median events/s divided by each baseline's (None when the baseline has no figure)."""


def summarize(results: Sequence[RunResult], windows: dict[str, str]) -> list[ContenderSummary]:
    """One summary per contender, in the order of first appearance in ``results``."""
    order = list(dict.fromkeys(r.contender for r in results))
    plain = [_one(name, windows.get(name, ""), [r for r in results if r.contender == name]) for name in order]
    medians = {s.contender: s.median_eps for s in plain if s.status == "ok"}
    return [
        replace(
            s, ratios=tuple((b, s.median_eps / medians[b] if medians.get(b) else None) for b in BASELINES)
        )
        if s.status == "ok"
        else s
        for s in plain
    ]


def _one(name: str, window: str, runs: list[RunResult]) -> ContenderSummary:
    bad = [r for r in runs if r.status != "ok"]
    if bad:
        first = bad[0]
        detail = f"run {first.repetition}: {first.detail}" if first.detail else f"run {first.repetition}"
        return ContenderSummary(name, window, first.status, len(runs), detail=detail)
    rates = [r.events_per_s for r in runs]
    return ContenderSummary(
        contender=name,
        window=window,
        status="ok",
        runs=len(runs),
        median_eps=statistics.median(rates),
        min_eps=min(rates),
        max_eps=max(rates),
        cpu_us_per_event=statistics.median(r.cpu_us_per_event for r in runs),
        peak_rss_bytes=max(r.peak_rss_bytes for r in runs),
        state_bytes=int(statistics.median(r.state_bytes for r in runs)),
    )
