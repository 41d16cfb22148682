"""The PNG bar chart of median events/s per contender (min-max as error bars, log scale);
continust in blue, the others in grey; contenders without figures are labelled with their
status."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.summary import ContenderSummary


def write_chart(path: Path, summaries: Sequence[ContenderSummary], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.contender for s in summaries]
    medians = [s.median_eps if s.status == "ok" else 0.0 for s in summaries]
    lower = [s.median_eps - s.min_eps if s.status == "ok" else 0.0 for s in summaries]
    upper = [s.max_eps - s.median_eps if s.status == "ok" else 0.0 for s in summaries]
    colors = ["#2a6fbb" if s.contender.startswith("continust") else "#888888" for s in summaries]
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=120)
    xs = list(range(len(names)))
    ax.bar(xs, medians, color=colors, yerr=[lower, upper], capsize=4)
    ax.set_yscale("log")
    ax.set_xticks(xs, names, rotation=20, ha="right")
    ax.set_ylabel("events per second (median, log scale)")
    ax.set_title(title)
    floor = min((m for m in medians if m > 0), default=1.0)
    ax.set_ylim(bottom=floor / 4)
    for x, s in zip(xs, summaries, strict=True):
        if s.status == "ok":
            ax.annotate(
                f"{s.median_eps:,.0f}",
                (x, s.max_eps),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 3),
                textcoords="offset points",
            )
        else:
            label = "FAILED" if s.status == "failed" else s.status.upper()
            ax.annotate(label, (x, floor / 3), ha="center", va="bottom", color="#b00020", fontsize=9)
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
