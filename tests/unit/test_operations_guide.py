"""docs/operations.md is the runbook the alerts link to: every alert's link lands on a section of
it, every exit code the worker uses is explained there, and the README links it."""

import re
from pathlib import Path

import yaml

from agents.broker_watch import EXIT_BROKER_LOST
from streams.kafka.credentials_check import EXIT_CREDENTIALS_REFUSED

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"


def test_every_alert_links_to_its_own_section_of_the_guide() -> None:
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', GUIDE.read_text()))
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    assert alerts
    linked = set()
    for rule in alerts:
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section {anchor!r} in {GUIDE.name}"
        section = GUIDE.read_text().split(f'<a id="{anchor}"></a>', 1)[1].lstrip()
        assert section.startswith(f"### {rule['alert']}\n"), rule["alert"]
        linked.add(anchor)
    assert {a for a in anchors if a.startswith("alert-")} == linked  # no section for a removed alert


def test_every_exit_code_of_the_worker_is_explained() -> None:
    table = GUIDE.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.MULTILINE)}
    assert {0, 1, 2, EXIT_BROKER_LOST, EXIT_CREDENTIALS_REFUSED} <= codes


def test_the_readme_links_the_guide() -> None:
    assert "](docs/operations.md)" in (ROOT / "README.md").read_text()
