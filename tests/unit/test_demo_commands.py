"""The demo's printed guide names routes the worker serves, the metrics it exports and files the
project ships."""

import re
from pathlib import Path
from typing import Any, cast

from agents.cli.demo_commands import demo_commands
from streams.api.http_api import core_routes
from streams.plan.pipeline import load_pipeline
from streams.telemetry.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_says_where_the_metrics_are_and_what_reads_them() -> None:
    pipeline = load_pipeline(ROOT / "examples" / "pipelines.toml")
    text = demo_commands(pipeline, 6066, ["ann", "bob"])
    assert "Metrics: http://127.0.0.1:6066/metrics" in text
    # every path it names is shipped, and every route it names is served
    for path in [*re.findall(r"\b(?:docs|deploy)/[\w./-]+\w", text), "docker-compose.yml"]:
        assert (ROOT / path).exists(), path
    served = {route.path for route in core_routes(cast(Any, None))}
    for route in ("/metrics", "/health", "/ready"):
        assert route in served and f"6066{route}" in text
    # the families the example greps for are exported, or read when scraped and documented
    documented = set(re.findall(r"`(continust_\w+)`", (ROOT / "docs" / "operations-metrics.md").read_text()))
    exported = {family.name for family in REGISTRY.collect()} | documented
    grep = re.search(r"grep -E '\^continust_\(([^)]*)\)'", text)
    assert grep is not None
    for part in grep.group(1).split("|"):
        assert any(name.startswith(f"continust_{part}") for name in exported), part
    for table in pipeline.tables:
        assert f"/api/tables/{table.name}/keys/ann" in text and f"/api/tables/{table.name}/keys/bob" in text
        if table.output:
            assert repr(table.output) in text
