"""The command line of ``python -m bench`` (``make bench`` runs it with the defaults)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench.contenders import CONTENDERS

LATENCY_CONTENDERS = ("continust-tumbling", "quix")


@dataclass(frozen=True)
class Options:
    events: int
    keys: int
    partitions: int
    repetitions: int
    port: int | None
    contenders: tuple[str, ...]
    out: Path
    event_spacing_ms: int
    min_rate: float
    latency_contenders: tuple[str, ...]
    latency_rate: int
    latency_seconds: float
    latency_drain_s: float
    workdir: Path
    keep: bool

    @property
    def chart(self) -> Path:
        return self.out.with_suffix(".png")

    def run_timeout_s(self) -> float:
        """How long one run may take before it is reported as ``timeout``."""
        return 180.0 + self.events / self.min_rate


def _names(text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return names


def parse_options(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="continust against the raw consumer, Faust and Quix Streams on the local broker. "
        "Exits 1 when a contender's results are wrong or it did not finish.",
    )
    p.add_argument("--events", type=int, default=1_000_000, help="input events (default 1,000,000)")
    p.add_argument("--keys", type=int, default=1000, help="distinct users (default 1000)")
    p.add_argument("--partitions", type=int, default=8, help="input topic partitions (default 8)")
    p.add_argument("--repetitions", type=int, default=3, help="runs per contender, alternating (default 3)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="broker port (default: the CLI's, 9092 or CONTINUST_KAFKA_PORT)",
    )
    every = tuple(CONTENDERS)
    p.add_argument(
        "--contenders",
        type=lambda t: _names(t, every),
        default=every,
        help=f"comma-separated, in run order (default: {','.join(every)})",
    )
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="report; the chart is .png")
    p.add_argument(
        "--event-spacing-ms", type=int, default=1, help="event time between consecutive events (default 1)"
    )
    p.add_argument(
        "--min-rate",
        type=float,
        default=200.0,
        help="a run taking longer than 180 s + events / this is stopped as a timeout (default 200)",
    )
    p.add_argument(
        "--latency-contenders",
        type=lambda t: _names(t, LATENCY_CONTENDERS) if t != "none" else (),
        default=LATENCY_CONTENDERS,
        help=f"measured at a fixed input rate, or 'none' (default: {','.join(LATENCY_CONTENDERS)})",
    )
    p.add_argument("--latency-rate", type=int, default=20_000, help="events/s (default 20000)")
    p.add_argument("--latency-seconds", type=float, default=10.0, help="production time (default 10)")
    p.add_argument(
        "--latency-drain",
        type=float,
        default=60.0,
        help="seconds to wait for outputs after production stops (default 60)",
    )
    p.add_argument(
        "--workdir", type=Path, default=Path(".data/bench"), help="state and logs (default .data/bench)"
    )
    p.add_argument("--keep", action="store_true", help="keep the run's topics and state directories")
    a = p.parse_args(argv)
    if a.events <= 0 or a.keys <= 0 or a.partitions <= 0 or a.repetitions <= 0:
        p.error("--events, --keys, --partitions and --repetitions must be positive")
    return Options(
        events=a.events,
        keys=a.keys,
        partitions=a.partitions,
        repetitions=a.repetitions,
        port=a.port,
        contenders=a.contenders,
        out=a.out,
        event_spacing_ms=a.event_spacing_ms,
        min_rate=a.min_rate,
        latency_contenders=a.latency_contenders,
        latency_rate=a.latency_rate,
        latency_seconds=a.latency_seconds,
        latency_drain_s=a.latency_drain,
        workdir=a.workdir,
        keep=a.keep,
    )
