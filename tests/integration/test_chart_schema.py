"""values.schema.json as helm applies it: each bad value is refused before anything is
rendered, with a schema error that names it, the same by `helm lint`, `helm template` and a
real `helm install` into the lab (which then has no release). The schema's keys themselves:
tests/unit/test_chart_values.py."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.chart import CHART, EVERY_OPTION, setting, template
from venue_lab.helm import helm
from venue_lab.session import Lab

pytestmark = pytest.mark.cluster  # helm is built from Go: not part of the fast tier

SCHEMA_ERROR = "values don't meet the specifications of the schema(s)"

# (--set, the error's line): the bad values first (#23), then one per kind of rule.
BAD_VALUES = [
    ("tenancy.maxReplicas=notanumber", "- at '/tenancy/maxReplicas': got string, want integer"),
    ("livenessPort=abc", "- at '/livenessPort': got string, want integer"),
    ("bogusKey=1", "- at '': additional properties 'bogusKey' not allowed"),
    ("tenancy.allowServiceCidrs=10.0.0.0/8",  # a list given as a string
     "- at '/tenancy/allowServiceCidrs': got string, want array"),
    ("tenancy.maxReplica=5", "- at '/tenancy': additional properties 'maxReplica' not allowed"),
    ("tenancy.allowServiceCidrs={10.0.0.0}", "- at '/tenancy/allowServiceCidrs/0': '10.0.0.0' "
     "does not match pattern"),
    ("metricsPort=70000", "- at '/metricsPort': maximum: got 70,000, want 65,535"),
    ("image.pullPolicy=Sometimes", "- at '/image/pullPolicy': value must be one of 'Always', "
     "'IfNotPresent', 'Never'"),
    ("secretReaders[0].namespace=shop",  # which Secrets: never all of them
     "- at '/secretReaders/0': missing property 'secrets'"),
    ("prometheusRule.for.VenueServiceDwn=5m",
     "- at '/prometheusRule/for': additional properties 'VenueServiceDwn' not allowed"),
    # The key before the alerts had pages of their own (a README anchor was added to it).
    ("prometheusRule.runbookUrl=https://wiki.example/venue",
     "- at '/prometheusRule': additional properties 'runbookUrl' not allowed"),
    ("prometheusRule.alertPageUrl=https://wiki.example/venue",  # every alert one page
     "- at '/prometheusRule/alertPageUrl': 'https://wiki.example/venue' does not match pattern"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "error"), BAD_VALUES, ids=[v for v, _ in BAD_VALUES])
def test_a_bad_value_is_refused_naming_it(the_lab: Lab, value: str, error: str) -> None:
    release = f"bad-{uuid.uuid4().hex[:8]}"
    lint = helm("lint", str(CHART), "--strict", "--set", value, check=False)
    rendered = helm("template", release, str(CHART), "--set", value, check=False)
    installed = helm("install", release, str(CHART), "--namespace", "default", "--set", value,
                     cluster=the_lab.cluster, check=False)  # fmt: skip
    for command, result in (("lint", lint), ("template", rendered), ("install", installed)):
        out = result.stdout + result.stderr
        assert result.returncode != 0, command
        assert SCHEMA_ERROR in out and error in out, f"helm {command}: {out}"
    assert "INSTALLATION FAILED" in installed.stderr
    releases = helm("list", "--all", "--namespace", "default", "--output", "json",
                    cluster=the_lab.cluster).stdout  # fmt: skip
    assert release not in {r["name"] for r in json.loads(releases)}


def test_schema_names_every_alert_of_the_prometheus_rule() -> None:
    """`prometheusRule.for` takes exactly the alerts the chart renders, by name."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    named = schema["properties"]["prometheusRule"]["properties"]["for"]["properties"]
    (rule,) = [d for d in template(*setting(*EVERY_OPTION)) if d["kind"] == "PrometheusRule"]
    alerts = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(named) == alerts
