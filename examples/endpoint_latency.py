"""p95 latency per endpoint per minute, and how many users called it, from sketches.

continust worker -c examples/endpoint_latency.py
"""

from __future__ import annotations

from streams.plan.python_front import App, tumbling

app = App("endpoint-latency")
requests = app.source("requests", topics=["requests"], key="endpoint", timestamp="ts")
requests.table(
    "latency_per_minute",
    window=tumbling("1m", grace="5s", retention="1d"),
    aggregate={
        "requests": "count()",
        "p95_ms": "percentile(latency_ms, 0.95)",
        "p50_ms": "percentile(latency_ms, 0.5)",
        "users": "count_distinct(user)",
    },
    emit="update",
    output="latency-per-minute",
)
