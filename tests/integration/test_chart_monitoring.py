"""The chart's PrometheusRule and Grafana dashboard, rendered: manifests/optional/ holds the
same alerts, the real PrometheusRule CRD accepts them, `promtool test rules` loads them and
each fires when it should, each alert's runbook_url is its page in docs/alerts/, and every
dashboard query parses. That they fire and answer on a real install is test_chart_install.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.chart import (
    DASHBOARD,
    NS,
    RELEASE,
    dashboard_queries,
    docs,
    install_prometheus_operator_crd,
    named,
    template,
)
from tests.harness import fresh_namespace, get
from venue_lab.session import Lab
from venue_operator.assess.checks import METRIC_CHECKS
from venue_operator.model.reasons import Reason

needs_helm = pytest.mark.cluster  # helm is built from Go, like the control plane


def optional_rule() -> dict[str, Any]:
    (rule,) = docs("optional/prometheusrule.yaml")
    return rule


def alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


# --- no helm, no lab ------------------------------------------------------------------


def test_alerts_cover_the_operator_and_the_services_it_guards() -> None:
    assert set(alerts(optional_rule())) == {
        "VenueOperatorDown", "VenueOperatorNotEvaluating", "VenueOperatorEvaluationErrors",
        "VenueOperatorDegraded", "VenueOperatorAlertmanagerFailing", "VenueOperatorPagingFailed",
        "VenueOperatorFleetStorm", "VenueServiceDown", "VenueServiceCritical", "VenueServiceBlind",
        "VenueServiceEscalated", "VenueServiceRemediationFailed", "VenueServiceBudgetExhausted",
        "VenueServiceMetricsUnavailable",
    }  # fmt: skip
    unavailable = alerts(optional_rule())["VenueServiceMetricsUnavailable"]["expr"]
    (checks,) = re.findall(r'check=~"([^"]+)"', unavailable)
    assert set(checks.split("|")) == set(METRIC_CHECKS), "the checks assess reads from Prometheus"


def test_every_reason_an_alert_or_panel_selects_is_an_event_reason() -> None:
    """A renamed Event reason would leave a `reason=~` matcher selecting nothing, silently."""
    text = json.dumps(optional_rule()) + DASHBOARD.read_text()
    selected = {name for names in re.findall(r'reason=~\\*"([\w|]+)', text)
                for name in names.split("|")}  # fmt: skip
    assert {"RemediationFailed", "RolledBack"} <= selected
    assert selected <= {str(reason) for reason in Reason}


def test_every_dashboard_query_parses() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    values = {"job": "venue-operator-metrics", "namespace": "ns", "venueservice": "svc",
              "check": "error_rate", "__rate_interval": "1m"}  # fmt: skip
    queries = dashboard_queries(dashboard, values)
    assert len(queries) >= 15
    for title, expr in queries:
        promql_parser.parse(expr)  # raises on a query Prometheus would refuse
        assert "venue_operator_" in expr or expr.startswith("up{"), title
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job", "namespace", "venueservice", "check"}


# --- helm -----------------------------------------------------------------------------


@needs_helm
def test_optional_prometheus_rule_is_the_chart_default() -> None:
    assert not [d for d in template() if d["kind"] == "PrometheusRule"]  # off by default
    rendered = template("--set", "prometheusRule.enabled=true")
    rule = named(rendered, "PrometheusRule", RELEASE)
    assert rule["metadata"]["namespace"] == NS
    assert rule["spec"] == optional_rule()["spec"], "regenerate manifests/optional/"
    down = alerts(rule)["VenueOperatorDown"]["expr"]
    assert down == ('up{job="venue-operator-metrics"} == 0 '
                    'or absent(up{job="venue-operator-metrics"})')  # fmt: skip
    # The job a ServiceMonitor on the chart's metrics Service gives the operator's target.
    assert named(rendered, "Service", f"{RELEASE}-metrics")


@needs_helm
def test_prometheus_rule_values() -> None:
    settings = ("prometheusRule.namespace=monitoring",
                "prometheusRule.labels.release=kube-prometheus-stack",
                "prometheusRule.alertLabels.team=platform",
                "prometheusRule.for.VenueServiceDown=7m",
                'prometheusRule.operatorSelector=job="ops"',
                "prometheusRule.alertPageUrl=https://wiki.example/venue/{alert}/")  # fmt: skip
    # A boolean given as a string ("false" is true to a template) is refused by the schema.
    rule = named(template("--set", "prometheusRule.enabled=true",
                          *(a for s in settings for a in ("--set-string", s))),
                 "PrometheusRule", RELEASE)  # fmt: skip
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    by_name = alerts(rule)
    assert by_name["VenueServiceDown"]["for"] == "7m"
    assert by_name["VenueServiceCritical"]["for"] == "10m"  # the others keep their default
    assert all(r["labels"]["team"] == "platform" for r in by_name.values())
    assert by_name["VenueOperatorDown"]["expr"] == 'up{job="ops"} == 0 or absent(up{job="ops"})'
    assert {name: r["annotations"]["runbook_url"] for name, r in by_name.items()} == {
        name: f"https://wiki.example/venue/{name}/" for name in by_name
    }
    # The old key, and a URL without {alert}: test_chart_schema.py's BAD_VALUES.


@needs_helm
def test_dashboard_config_map_carries_the_dashboard_for_grafanas_sidecar() -> None:
    assert not [d for d in template() if d["kind"] == "ConfigMap"]  # off by default
    name = f"{RELEASE}-dashboard"
    default = named(template("--set", "dashboards.enabled=true"), "ConfigMap", name)
    assert default["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert default["metadata"]["namespace"] == NS
    assert json.loads(default["data"]["venue-operator.json"]) == json.loads(DASHBOARD.read_text())
    moved = named(template("--set", "dashboards.enabled=true",
                           "--set", "dashboards.namespace=monitoring",
                           "--set", "dashboards.annotations.grafana_folder=Operators"),
                  "ConfigMap", name)  # fmt: skip
    assert moved["metadata"]["namespace"] == "monitoring"
    assert moved["metadata"]["annotations"] == {"grafana_folder": "Operators"}


# --- the lab --------------------------------------------------------------------------


def test_prometheus_rules_are_accepted_by_the_real_crd(the_lab: Lab) -> None:
    """manifests/optional/prometheusrule.yaml and the chart's, applied server-side to the real
    schema, which validates (a `for:` that is no duration is refused)."""
    install_prometheus_operator_crd(the_lab, "prometheusrules")
    kubectl = the_lab.cluster.kubectl
    chart = template("--set", "prometheusRule.enabled=true",
                     "-s", "templates/prometheusrule.yaml")  # fmt: skip
    with fresh_namespace(the_lab, "m") as ns:
        for rule in (optional_rule(), *chart):
            rule["metadata"]["namespace"] = ns
            rule["metadata"]["name"] += "-chart" if "helm.sh/chart" in rule["metadata"][
                "labels"] else ""  # fmt: skip
            kubectl("apply", "--server-side", "-f", "-", input=json.dumps(rule))
            stored = get(the_lab, "prometheusrule", ns, rule["metadata"]["name"])
            assert stored["spec"] == rule["spec"]
        bad = json.loads(json.dumps(rule))
        bad["metadata"]["name"] = "bad"
        bad["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
        refused = kubectl("apply", "--server-side", "-f", "-", input=json.dumps(bad),
                          check=False)  # fmt: skip
        assert refused.returncode != 0 and "for" in refused.stderr, refused.stderr


# What each alert's expression and `for:` do, in `promtool test rules` (Prometheus' own rule
# engine over synthetic series, one sample a minute). Annotations are left out: promtool
# would compare their rendered text, and test_every_alert_links_its_own_docs_page and the
# lab test cover them. (alert, series, eval time, expected firing alerts' labels)
SVC = {"namespace": "a", "name": "s"}
# fmt: off
PROMTOOL_CASES: list[tuple[str, dict[str, str], str, list[dict[str, str]]]] = [
    ("VenueOperatorDown", {'up{job="venue-operator-metrics"}': "1 1 0x10"}, "6m", []),
    ("VenueOperatorDown", {'up{job="venue-operator-metrics"}': "1 1 0x10"}, "8m",
     [{"job": "venue-operator-metrics"}]),
    ("VenueOperatorDown", {'up{job="elsewhere"}': "1x10"}, "6m",  # no target of ours at all
     [{"job": "venue-operator-metrics"}]),
    ("VenueOperatorNotEvaluating",
     {'venue_operator_evaluations_total{namespace="a",name="s"}': "0+4x20 80x30",
      'venue_operator_evaluations_total{namespace="a",name="t"}': "0+4x50"}, "42m", [SVC]),
    ("VenueOperatorNotEvaluating",
     {'venue_operator_evaluations_total{namespace="a",name="s"}': "0+4x20 80x30"}, "30m", []),
    ("VenueOperatorEvaluationErrors",  # half the cycles fail
     {'venue_operator_evaluation_errors_total{namespace="a",name="s"}': "0+1x40",
      'venue_operator_evaluations_total{namespace="a",name="s"}': "0+1x40"}, "30m", [SVC]),
    ("VenueOperatorEvaluationErrors",  # one in ten
     {'venue_operator_evaluation_errors_total{namespace="a",name="s"}': "0+1x40",
      'venue_operator_evaluations_total{namespace="a",name="s"}': "0+9x40"}, "30m", []),
    ("VenueOperatorDegraded",
     {'venue_operator_degraded{reason="permission_missing"}': "1x10",
      'venue_operator_degraded{reason="permission_unchecked"}': "0x10"}, "6m",
     [{"reason": "permission_missing"}]),
    ("VenueOperatorAlertmanagerFailing",
     {'venue_operator_alertmanager_posts_total{result="failed"}': "0+2x20",
      'venue_operator_alertmanager_posts_total{result="sent"}': "0+5x20"}, "15m", [{}]),
    ("VenueOperatorAlertmanagerFailing",
     {'venue_operator_alertmanager_posts_total{result="failed"}': "0x20",
      'venue_operator_alertmanager_posts_total{result="sent"}': "0+5x20"}, "15m", []),
    ("VenueOperatorPagingFailed",  # a page failing for 3 minutes; another recovered at once
     {'venue_operator_paging_failing{namespace="a",name="s"}': "0 1x5 0",
      'venue_operator_paging_failing{namespace="a",name="t"}': "0 1 0x5"}, "4m", [SVC]),
    ("VenueOperatorFleetStorm",  # one alert for the fleet, however many scopes storm
     {'venue_operator_fleet_storm{scope="namespace a",check="p99_latency"}': "_ 6x5",
      'venue_operator_fleet_storm{scope="cluster",check="p99_latency"}': "_ 9x5"}, "2m", [{}]),
    ("VenueOperatorFleetStorm",  # over: the series are gone
     {'venue_operator_fleet_storm{scope="cluster",check="p99_latency"}': "6 6 stale"}, "3m", []),
    ("VenueServiceDown",
     {'venue_operator_health{namespace="a",name="s",health="Down"}': "0 1x10",
      'venue_operator_health{namespace="a",name="s",health="Healthy"}': "1 0x10"}, "4m",
     [{**SVC, "health": "Down"}]),
    ("VenueServiceDown",  # Down for a minute only
     {'venue_operator_health{namespace="a",name="s",health="Down"}': "0 1 0x10"}, "4m", []),
    ("VenueServiceCritical",
     {'venue_operator_severity{namespace="a",name="s",severity="P2"}': "1x20"}, "12m",
     [{**SVC, "severity": "P2"}]),
    ("VenueServiceEscalated",
     {'venue_operator_incident_escalated{namespace="a",name="s"}': "0 0 1"}, "2m", [SVC]),
    ("VenueServiceRemediationFailed",
     {'venue_operator_events_total{reason="RemediationFailed"}': "0 0 1x10",
      'venue_operator_events_total{reason="RolledBack"}': "0 1x10"}, "5m",
     [{"reason": "RemediationFailed"}]),
    ("VenueServiceRemediationFailed",  # more than 15 minutes ago
     {'venue_operator_events_total{reason="RemediationFailed"}': "0 0 1x30"}, "25m", []),
    ("VenueServiceBudgetExhausted",
     {'venue_operator_remediation_held{namespace="a",name="s",by="budget"}': "1x5",
      'venue_operator_remediation_held{namespace="a",name="s",by="cooldown"}': "1x5"}, "3m",
     [{**SVC, "by": "budget"}]),
    ("VenueServiceBlind",  # blind for 12 minutes; another only for 3
     {'venue_operator_health{namespace="a",name="s",health="Unknown"}': "1x15",
      'venue_operator_health{namespace="a",name="t",health="Unknown"}': "0 1x3 0x10"}, "12m",
     [{**SVC, "health": "Unknown"}]),
    ("VenueServiceMetricsUnavailable",  # a health probe's unknown is not a metrics problem
     {'venue_operator_check_level{namespace="a",name="s",check="error_rate"}': "-1x20",
      'venue_operator_check_level{namespace="a",name="s",check="memory"}': "-1x20",
      'venue_operator_check_level{namespace="a",name="t",check="health"}': "-1x20"}, "12m",
     [SVC]),
]
# fmt: on


@pytest.mark.cluster  # promtool is Debian's prometheus package: not in the Python-only tier
def test_each_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    rule = optional_rule()
    groups = json.loads(json.dumps(rule["spec"]["groups"]))
    for group in groups:
        for r in group["rules"]:
            r.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    severity = {name: r["labels"]["severity"] for name, r in alerts(rule).items()}
    tests = [
        {"interval": "1m",
         "input_series": [{"series": s, "values": v} for s, v in series.items()],
         "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": [
             {"exp_labels": {**labels, "severity": severity[alert]}}
             for labels in expected]}]}
        for alert, series, at, expected in PROMTOOL_CASES
    ]  # fmt: skip
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))  # fmt: skip
    result = subprocess.run(["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert {alert for alert, *_ in PROMTOOL_CASES} == set(alerts(rule))
