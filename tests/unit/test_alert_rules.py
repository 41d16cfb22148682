"""The alert rules of deploy/prometheus: promtool accepts the rule file and the compose stack's
Prometheus configuration, and passes the rules' unit tests (alerts.test.yaml); every alert says
how severe it is, what happened and where its runbook is."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring_files import ALERTS, alert_groups, compose_mounts
from tests.tool_needs import require

PROMETHEUS = ALERTS.parent


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    """Run promtool (installed by `make test`); the test fails with its output when it does."""
    tool = shutil.which("promtool")
    require("promtool", tool is not None, "`make prometheus` (part of `make test`)")
    assert tool is not None
    done = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in alert_groups() for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    assert f"SUCCESS: {len(alert_rules())} rules found" in promtool("check", "rules", str(ALERTS))


def test_promtool_passes_the_rules_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yaml")


def test_every_alert_has_a_fire_and_a_quiet_case() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yaml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in alert_rules():
        outcomes = [bool(c["exp_alerts"]) for c in cases if c["alertname"] == rule["alert"]]
        assert True in outcomes and False in outcomes, rule["alert"]


def test_promtool_checks_the_compose_prometheus_config(tmp_path: Path) -> None:
    """The configuration as the compose service sees it: its rule file at the path the
    service mounts it."""
    mounts = compose_mounts("prometheus")
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yaml"]
    assert mounts["/etc/prometheus/alerts.yaml"] == ALERTS
    config["rule_files"] = [str(ALERTS)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    assert "1 rule files found" in promtool("check", "config", str(local))


def test_every_alert_has_severity_summary_description_and_a_runbook_anchor() -> None:
    rules = alert_rules()
    assert len(rules) >= 8
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}, name
        assert rule["annotations"]["runbook"] == f"docs/operations.md#alert-{name.lower()}"
        assert re.fullmatch(r"\d+m", rule["for"]), name
