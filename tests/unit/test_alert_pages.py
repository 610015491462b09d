"""One docs page per PrometheusRule alert (docs/alerts/), and an alert per page: each names its
alert's severity and `for:` as the rule has them, says what it means, why it matters and what
to do, and is the page the chart's runbook_url of that alert points to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "docs" / "alerts"
TEMPLATE = REPO / "charts" / "venue-operator" / "templates" / "prometheusrule.yaml"


def rules() -> dict[str, dict[str, Any]]:
    rule = yaml.safe_load((REPO / "manifests" / "optional" / "prometheusrule.yaml").read_text())
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


ALERTS = rules()


def test_a_page_per_alert_and_an_alert_per_page() -> None:
    pages = {p.stem for p in PAGES.glob("*.md")} - {"index"}
    assert pages == set(ALERTS)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_page_says_its_alerts_severity_and_what_to_do(name: str) -> None:
    text = (PAGES / f"{name}.md").read_text()
    rule = ALERTS[name]
    assert rule["labels"]["severity"] in ("critical", "warning"), name
    assert text.startswith(f"# {name}\n")
    assert f"**Severity:** {rule['labels']['severity']} · **for:** {rule['for']}" in text
    for heading in ("## What it means", "## Why it matters", "## What to do"):
        assert f"\n{heading}\n" in text, heading


def test_the_index_lists_every_page_with_its_severity_and_for() -> None:
    index = (PAGES / "index.md").read_text()
    rows = re.findall(r"^\| \[(\w+)\]\((\w+)\.md\) \| (\w+) \| (\w+) \|", index, re.MULTILINE)
    assert {name: (page, severity, for_) for name, page, severity, for_ in rows} == {
        name: (name, r["labels"]["severity"], r["for"]) for name, r in ALERTS.items()
    }


def test_each_runbook_url_is_its_alerts_page() -> None:
    for name, rule in ALERTS.items():
        assert rule["annotations"]["runbook_url"] == (
            f"https://github.com/tickettoken/venue-operator/blob/main/docs/alerts/{name}.md"
        )
    # The chart's template (helm renders it in the full tier): each rule names its own page.
    pairs = re.findall(r'- alert: (\w+)\n(?:.*\n)*?\s+runbook_url: \{\{ replace "\{alert\}" '
                       r'"(\w+)" \$page \}\}', TEMPLATE.read_text())  # fmt: skip
    assert len(pairs) == len(ALERTS) and all(alert == page for alert, page in pairs), pairs
