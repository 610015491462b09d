"""The Helm chart's test helpers (test_chart*.py): render it with the real helm, pick objects."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests import upstream_crds
from venue_lab.cluster import ensure_binaries
from venue_lab.helm import helm
from venue_lab.operator_process import OperatorProcess
from venue_lab.session import Lab

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "venue-operator"
RELEASE = NS = "venue-operator"  # the names manifests/ uses: a default release renders them
PROMETHEUS_OPERATOR = upstream_crds.DATA / "prometheus-operator"

Docs = list[dict[str, Any]]


# Every optional piece on (the chart's largest rendering).
EVERY_OPTION = ("serviceMonitor.enabled=true", "prometheusRule.enabled=true",
                "dashboards.enabled=true", "networkPolicy.enabled=true", "peering.enabled=true",
                "namespace.create=true", "namespace.name=ops")  # fmt: skip


def setting(*options: str) -> list[str]:
    """`--set` arguments for helm."""
    return [arg for option in options for arg in ("--set", option)]


def rendered(*args: str, release: str = RELEASE, namespace: str = NS) -> str:
    """`helm template` of the chart: the YAML stream."""
    return helm("template", release, str(CHART), "--namespace", namespace, *args).stdout


def template(*args: str, release: str = RELEASE, namespace: str = NS) -> Docs:
    return [d for d in yaml.safe_load_all(rendered(*args, release=release, namespace=namespace))
            if d]  # fmt: skip


def kustomized_text() -> str:
    """`kubectl kustomize manifests/` with the lab's kubectl: the YAML stream."""
    kubectl = ensure_binaries() / "kubectl"
    out = subprocess.run([str(kubectl), "kustomize", str(REPO / "manifests")],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return out.stdout


def named(items: Docs, kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in items if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def docs(path: str) -> Docs:
    """The objects of one file under manifests/."""
    return [d for d in yaml.safe_load_all((REPO / "manifests" / path).read_text()) if d]


def install_prometheus_operator_crd(lab: Lab, plural: str) -> None:
    """One of the Prometheus Operator's real CRDs (tests/data, v0.93.0), served by the lab."""
    upstream_crds.install(lab, PROMETHEUS_OPERATOR / f"monitoring.coreos.com_{plural}.yaml")


DASHBOARD = CHART / "files" / "dashboards" / "venue-operator.json"


def dashboard_queries(dashboard: dict[str, Any], values: dict[str, str]) -> list[tuple[str, str]]:
    """(title, PromQL) for every query of every panel, rows' panels included, and of every
    template variable (Grafana's `label_values(SELECTOR, LABEL)` as `count by (LABEL)
    (SELECTOR)`), with the variables ($name, ${name}) replaced by `values` (KeyError on one
    it lacks)."""

    def substituted(expr: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)

    found: list[tuple[str, str]] = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["definition"])
            assert query, f"{variable['name']}: {variable['definition']}"
            selector, label = query.groups()
            found.append((f"variable {variable['name']}",
                          f"count by ({label}) ({substituted(selector)})"))  # fmt: skip
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            found.append((panel["title"], substituted(target["expr"])))
    return found


@contextlib.contextmanager
def the_chart_alerts_on(lab: Lab, running: OperatorProcess, *at_once: str) -> Iterator[None]:
    """The lab's Prometheus scrapes `running` and evaluates the chart's PrometheusRule, with
    the `for:` of the alerts named at 0 s (the lab's scenarios are seconds long)."""
    now = (f"prometheusRule.for.{alert}=0s" for alert in at_once)
    rendered = template(*setting("prometheusRule.enabled=true", *now))
    (rule,) = [d for d in rendered if d["kind"] == "PrometheusRule"]
    target, name = f"127.0.0.1:{running.metrics_port}", f"rules-{running.metrics_port}"
    lab.prometheus.add_target(target, {"job": name})
    lab.prometheus.load_rules(name, rule["spec"]["groups"])
    try:
        yield
    finally:
        lab.prometheus.remove_target(target)
        lab.prometheus.remove_rules(name)
