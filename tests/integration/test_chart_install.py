"""A real `helm install` of the chart into the lab, with every optional piece on, in a
namespace the chart creates under Pod Security "restricted"; then the chart's configuration
really runs: the operator process with the ServiceAccount the chart created (a token from the
TokenRequest API) and the container args the chart rendered (read back from the installed
Deployment) completes the packaging check, rolling a bad rollout back. Meanwhile the lab's
Prometheus scrapes it under the job the chart's ServiceMonitor gives it and evaluates the
installed PrometheusRule: an alert fires, and every query of the installed dashboard
answers. (kwok only fakes the Deployment's pod: the process is the operator that acts.)
Installed with shards on (two replicas): the process is one of them, its Lease renewed in the
release namespace under the Role the chart gives it; the default, one replica without shards,
is what test_uninstall installs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chart import CHART, dashboard_queries, install_prometheus_operator_crd
from tests.harness import fresh_namespace, get, rolls_back_a_bad_rollout
from venue_lab.helm import helm
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import free_port, wait_until
from venue_lab.session import Lab

WATCHED = "c-*"  # the chart-installed operator's namespaces (the session operator's: t-*)
# The lab's tenant boundaries (operator_process.LAB_TENANCY), as the chart's values.
LAB_TENANCY = ("tenancy.allowServiceCidrs={127.0.0.0/8}", "tenancy.minCooldownSeconds=0",
               "tenancy.minProbeIntervalSeconds=0", "tenancy.maxActionsPerHour=100",
               "tenancy.maxReplicas=20")  # fmt: skip
FIRES = "VenueServiceCritical"  # a bad release's error rate is critical (P2) until rolled back


@pytest.fixture
def release(the_lab: Lab) -> Iterator[tuple[str, str]]:
    """A release name and the fresh namespace the chart creates for it; uninstalled after."""
    for plural in ("servicemonitors", "prometheusrules"):
        install_prometheus_operator_crd(the_lab, plural)
    suffix = uuid.uuid4().hex[:8]
    name, namespace = f"venue-operator-{suffix}", f"h-{suffix}"
    yield name, namespace
    helm("uninstall", name, "--namespace", "default", "--wait", "--timeout=60s",
         cluster=the_lab.cluster, check=False)  # fmt: skip
    the_lab.cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found",
                            "--wait=false", check=False)  # fmt: skip


def install(lab: Lab, name: str, namespace: str, *more: str) -> None:
    """Everything on; the values a platform team would set for this cluster (its Prometheus,
    its namespaces, its tenant boundaries), plus free ports: the process runs on this host.
    `more`: further `--set` values."""
    settings = (
        "crds.install=false",  # the lab's CRD is not Helm's
        "namespace.create=true", f"namespace.name={namespace}",
        f"prometheusUrl={lab.prometheus.url}", f"watchNamespaces={{{WATCHED}}}",
        f"livenessPort={free_port()}", f"metricsPort={free_port()}", *LAB_TENANCY,
        "serviceMonitor.enabled=true", "prometheusRule.enabled=true", "dashboards.enabled=true",
        f"prometheusRule.for.{FIRES}=0s",  # the test's scenario is seconds long, not 10 min
        *more,
    )  # fmt: skip
    helm("install", name, str(CHART), "--namespace", "default", "--wait", "--timeout=90s",
         *(arg for s in settings for arg in ("--set", s)), cluster=lab.cluster)  # fmt: skip


def chart_operator(
    lab: Lab, name: str, namespace: str, pod_name: str = "venue-operator-0"
) -> OperatorProcess:
    """The operator as the chart configured it: its ServiceAccount, its container args, and
    what the downward API would tell it (its Pod's name and namespace)."""
    pod = get(lab, "deployment", namespace, name)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = [
        # In a pod 0.0.0.0 is the pod's own address; on this host, loopback is.
        "--bind-address=127.0.0.1" if a == "--bind-address=0.0.0.0" else a
        for a in container["args"]
    ]  # fmt: skip
    assert f"--prometheus-url={lab.prometheus.url}" in args and f"--namespace={WATCHED}" in args
    kubeconfig = lab.cluster.kubeconfig_for(pod["serviceAccountName"], namespace)
    return OperatorProcess(kubeconfig, args=tuple(args),
                           env={"POD_NAME": pod_name, "POD_NAMESPACE": namespace})  # fmt: skip


def test_chart_install_runs_rolls_back_alerts_and_answers_the_dashboard(
    the_lab: Lab, release: tuple[str, str]
) -> None:
    name, namespace = release
    lab, kubectl = the_lab, the_lab.cluster.kubectl
    install(lab, name, namespace, "shards.enabled=true", "shards.replicas=2")
    ns = json.loads(kubectl("get", "namespace", namespace, "-o", "json").stdout)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # Available: the restricted admission accepted the pod (kwok runs it).
    kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=60s")
    sa = f"system:serviceaccount:{namespace}:{name}"
    for verb, resource, allowed in (("patch", "deployments.apps", "yes"),
                                    ("list", "venueservices.ops.tickettoken.io", "yes"),
                                    ("get", "secrets", "no")):  # fmt: skip
        answer = kubectl("auth", "can-i", verb, resource, f"--as={sa}", "-A", check=False)
        assert answer.stdout.strip() == allowed, (verb, resource, answer.stderr)
    for where, allowed in ((namespace, "yes"), ("default", "no")):  # its own namespace only
        answer = kubectl("auth", "can-i", "patch", "leases.coordination.k8s.io", f"--as={sa}",
                         "-n", where, check=False)  # fmt: skip
        assert answer.stdout.strip() == allowed, (where, answer.stderr)
    status = json.loads(helm("status", name, "--namespace", "default", "-o", "json",
                             cluster=lab.cluster).stdout)  # fmt: skip
    assert status["info"]["status"] == "deployed"

    member = f"{name}-5d4f7-abcde"  # as the Deployment names its pods
    operator = chart_operator(lab, name, namespace, member)
    assert operator.args is not None and "--shards" in operator.args
    monitor = get(lab, "servicemonitor", namespace, name)
    # What the Prometheus Operator makes of the ServiceMonitor: job = the Service's name,
    # the operator's own labels kept (honorLabels).
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
    job = f"{name}-metrics"
    get(lab, "service", namespace, job)
    target = f"127.0.0.1:{operator.metrics_port}"
    lab.prometheus.add_target(target, {"job": job})
    rule = get(lab, "prometheusrule", namespace, name)
    lab.prometheus.load_rules(name, rule["spec"]["groups"])
    try:
        with (
            fresh_namespace(lab, "c") as venue_ns,
            rolls_back_a_bad_rollout(lab, venue_ns, operator) as venue,
        ):
            lease = get(lab, "lease", namespace, member)["spec"]
            assert lease["holderIdentity"] == member and lease["renewTime"]
            fired = alert_fired(lab, FIRES, venue_ns)
            assert fired["name"] == venue.name and fired["severity"] == "warning"
            dashboard = get(lab, "configmap", namespace, f"{name}-dashboard")
            answers_every_query(lab, json.loads(dashboard["data"]["venue-operator.json"]),
                                job, venue_ns, venue.name)  # fmt: skip
    finally:
        lab.prometheus.remove_target(target)
        lab.prometheus.remove_rules(name)


def alert_fired(lab: Lab, alert: str, namespace: str) -> dict[str, Any]:
    """The labels of `alert`, once Prometheus has had it firing (at any moment since)."""
    query = (f'max_over_time(ALERTS{{alertname="{alert}", alertstate="firing", '
             f'namespace="{namespace}"}}[10m])')  # fmt: skip
    wait_until(f"{alert} firing", lambda: bool(lab.prometheus.query(query)), 30, interval=0.5)
    (series,) = lab.prometheus.query(query)
    labels: dict[str, Any] = series["metric"]  # type: ignore[assignment]
    return labels


def answers_every_query(
    lab: Lab, dashboard: dict[str, Any], job: str, namespace: str, name: str
) -> None:
    values = {"job": job, "namespace": namespace, "venueservice": name, "check": "error_rate",
              "__rate_interval": "1m"}  # fmt: skip
    queries = dashboard_queries(dashboard, values)
    for title, expr in queries:
        wait_until(
            f"dashboard panel {title!r} answers {expr}",
            lambda expr=expr: bool(lab.prometheus.query(expr)),
            20,
            interval=0.5,
        )  # type: ignore[misc]
