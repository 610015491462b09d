"""The Helm chart (charts/venue-operator) with the real helm built from the Go module proxy:
lint and template pass, defaults render what `kubectl kustomize manifests/` does (a drift test
that fails on any difference in RBAC rules, container args or security context). The real
`helm install` is test_chart_install.py; the alerts and dashboard, test_chart_monitoring.py."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
import yaml

from tests.chart import (
    CHART,
    EVERY_OPTION,
    NS,
    RELEASE,
    REPO,
    Docs,
    docs,
    install_prometheus_operator_crd,
    kustomized_text,
    named,
    setting,
    template,
)
from tests.harness import fresh_namespace
from venue_lab.helm import helm
from venue_lab.processes import LabError
from venue_lab.session import Lab
from venue_operator.model.crd import CRD_PATH

# module-scoped fixtures: the whole module runs on one xdist worker, in order
pytestmark = pytest.mark.xdist_group("test_chart")

KEEP = {"helm.sh/resource-policy": "keep"}

# helm is built from Go (like the control plane): not part of the fast tier.
needs_helm = pytest.mark.cluster


def kustomized() -> Docs:
    return [d for d in yaml.safe_load_all(kustomized_text()) if d]


def aggregation(role: dict[str, Any]) -> dict[str, str]:
    labels = role["metadata"].get("labels", {})
    return {k: v for k, v in labels.items() if k.startswith("rbac.authorization.k8s.io/")}


def drift(chart: Docs, kustomize: Docs) -> list[str]:
    """What an operator installed by the chart would do differently from manifests/: RBAC
    (rules, aggregation, who is bound), and the whole pod spec (args, security context,
    image, probes, resources, volumes), replicas and strategy."""
    found: list[str] = []

    def same(what: str, ours: Any, theirs: Any) -> None:
        if ours != theirs:
            found.append(f"{what}: chart {json.dumps(ours)} != kustomize {json.dumps(theirs)}")

    role, kust_role = named(chart, "ClusterRole", RELEASE), named(kustomize, "ClusterRole", NS)
    same("ClusterRole rules", role["rules"], kust_role["rules"])
    for user_role in ("venueservices-view", "venueservices-edit"):
        ours = named(chart, "ClusterRole", f"{RELEASE}-{user_role}")
        theirs = named(kustomize, "ClusterRole", user_role)
        same(f"{user_role} rules", ours["rules"], theirs["rules"])
        same(f"{user_role} aggregation", aggregation(ours), aggregation(theirs))
    binding, kust_binding = (named(d, "ClusterRoleBinding", NS) for d in (chart, kustomize))
    same("ClusterRoleBinding subjects", binding["subjects"], kust_binding["subjects"])
    same("ClusterRoleBinding roleRef", binding["roleRef"], kust_binding["roleRef"])
    dep, kust_dep = (named(d, "Deployment", NS)["spec"] for d in (chart, kustomize))
    pod, kust_pod = dep["template"]["spec"], kust_dep["template"]["spec"]
    (container,), (kust_container,) = pod["containers"], kust_pod["containers"]
    same("container args", container["args"], kust_container["args"])
    same("container securityContext", container["securityContext"],
         kust_container["securityContext"])  # fmt: skip
    same("pod securityContext", pod["securityContext"], kust_pod["securityContext"])
    same("pod spec", pod, kust_pod)
    same("replicas", dep["replicas"], kust_dep["replicas"])
    same("strategy", dep.get("strategy"), kust_dep.get("strategy"))
    same("pod annotations", dep["template"]["metadata"]["annotations"],
         kust_dep["template"]["metadata"]["annotations"])  # fmt: skip
    service = named(chart, "Service", f"{RELEASE}-metrics")["spec"]
    kust_service = named(kustomize, "Service", f"{NS}-metrics")["spec"]
    same("metrics Service ports", service["ports"], kust_service["ports"])
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_metrics_service_and_service_monitor_select_the_operator() -> None:
    """manifests/: the ServiceMonitor selects the Service, the Service the operator's pods,
    on the port the operator serves /metrics on."""
    service = named(docs("service.yaml"), "Service", f"{NS}-metrics")
    monitor = named(docs("optional/servicemonitor.yaml"), "ServiceMonitor", NS)
    dep = named(docs("deployment.yaml"), "Deployment", NS)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert selects(service["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"])
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    (port,) = service["spec"]["ports"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
    served = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"--metrics-port={served[port['targetPort']]}" in container["args"]


# --- no cluster -----------------------------------------------------------------------


def test_chart_version_and_app_version_are_the_package_version() -> None:
    package = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == package


def test_the_docs_table_names_every_template() -> None:
    page = (REPO / "docs" / "getting-started.md").read_text()
    table = page[page.index("| the chart installs (template) |") :].split("\n\n")[0]
    for path in (CHART / "templates").glob("*.yaml"):
        assert f"`{path.name}`" in table, f"docs/getting-started.md's chart table lacks {path.name}"


def test_chart_crd_file_is_the_generated_crd() -> None:
    # .Files.Get reads inside the chart only, so the chart holds a copy; regenerate with
    # `cp crds/venueservices.ops.tickettoken.io.yaml charts/venue-operator/files/`.
    copy = CHART / "files" / CRD_PATH.name
    assert copy.read_text() == (REPO / CRD_PATH).read_text(), "copy it again"


@needs_helm
@pytest.mark.parametrize("options", [(), EVERY_OPTION], ids=["defaults", "every option"])
def test_helm_lint_strict_passes(options: tuple[str, ...]) -> None:
    out = helm("lint", str(CHART), "--strict", *(a for o in options for a in ("--set", o))).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    kinds = {d["kind"] for d in template(*(a for o in options for a in ("--set", o)))}
    assert not options or {"PrometheusRule", "ConfigMap", "ServiceMonitor"} <= kinds


@needs_helm
def test_rendered_crd_is_the_generated_one_kept_on_uninstall() -> None:
    (crd,) = [d for d in template() if d["kind"] == "CustomResourceDefinition"]
    assert crd["metadata"].pop("annotations") == KEEP
    assert crd == yaml.safe_load((REPO / CRD_PATH).read_text())
    off = template("--set", "crds.install=false")
    assert not [d for d in off if d["kind"] == "CustomResourceDefinition"]


@needs_helm
def test_defaults_render_what_kustomize_does() -> None:
    chart, kustomize = template(), kustomized()
    assert drift(chart, kustomize) == []
    kinds = sorted(d["kind"] for d in chart)
    assert kinds == sorted(d["kind"] for d in kustomize if d["kind"] != "Namespace")


@needs_helm
@pytest.mark.parametrize(
    ("setting", "difference"),
    [
        ("logJson=false", "container args"),
        ("prometheusUrl=http://elsewhere:9090", "container args"),
        ("tenancy.maxReplicas=1000", "container args"),
        ("peering.enabled=true", "replicas"),
        ("userRoles.create=false", None),  # the roles are gone: `named` finds none
        ("keda.rbac=false", "ClusterRole rules"),  # optional without KEDA
    ],
)
def test_drift_check_sees_a_changed_value(setting: str, difference: str | None) -> None:
    """The drift check is not vacuous: one changed value is reported."""
    kustomize = kustomized()
    if difference is None:
        with pytest.raises(ValueError):
            drift(template("--set", setting), kustomize)
        return
    assert any(line.startswith(difference) for line in drift(template("--set", setting), kustomize))


@needs_helm
def test_values_reach_the_pod() -> None:
    settings = ("peering.enabled=true", "peering.lifetime=30", "image.tag=0.2.0",
                "watchNamespaces={prod-*,staging}")  # fmt: skip
    rendered = template(*(arg for s in settings for arg in ("--set", s)))
    dep = named(rendered, "Deployment", RELEASE)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "venue-operator:0.2.0"
    assert container["args"][-4:] == [
        "--namespace=prod-*",
        "--namespace=staging",
        "--peering=venue-operator",
        "--peering-lifetime=30",
    ]
    assert named(rendered, "ClusterKopfPeering", "venue-operator")
    assert named(rendered, "ClusterRole", f"{RELEASE}-peering")["rules"][0]["apiGroups"] == [
        "kopf.dev"
    ]
    assert dep["spec"]["replicas"] == 2 and "strategy" not in dep["spec"]


@needs_helm
def test_shards_run_several_acting_replicas_with_a_role_for_their_leases_only() -> None:
    rendered = template("--set", "shards.enabled=true", "--set", "shards.lease=20")
    dep = named(rendered, "Deployment", RELEASE)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["args"][-2:] == ["--shards", "--shard-lease=20"]
    assert dep["spec"]["replicas"] == 3 and "strategy" not in dep["spec"]  # rolling
    env = {e["name"] for e in container["env"]}
    assert {"POD_NAME", "POD_NAMESPACE"} <= env  # its member name, where the Leases are
    role = named(rendered, "Role", f"{RELEASE}-shards")
    assert role["metadata"]["namespace"] == NS
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "list", "create", "patch", "delete"]}]  # fmt: skip
    assert named(rendered, "PodDisruptionBudget", RELEASE)["spec"]["maxUnavailable"] == 1
    assert not [d for d in template() if d["kind"] == "Role" and "shards" in d["metadata"]["name"]]
    with pytest.raises(LabError, match="exclude each other"):
        template("--set", "shards.enabled=true", "--set", "peering.enabled=true")


@needs_helm
def test_service_metrics_alerts_is_passed_on_and_full_is_the_default() -> None:
    def args(*more: str) -> list[str]:
        (container,) = named(template(*more), "Deployment", RELEASE)["spec"]["template"]["spec"][
            "containers"
        ]
        return [a for a in container["args"] if a.startswith("--service-metrics")]

    assert args() == []  # the operator's default, full
    assert args("--set", "serviceMetrics=alerts") == ["--service-metrics=alerts"]
    with pytest.raises(LabError, match="serviceMetrics"):
        template("--set", "serviceMetrics=some")


@needs_helm
def test_chart_service_monitor_is_the_optional_manifest_for_the_release() -> None:
    assert not [d for d in template() if d["kind"] == "ServiceMonitor"]  # off by default
    rendered = template("--set", "serviceMonitor.enabled=true",
                        "--set", "serviceMonitor.labels.release=kube-prometheus-stack")  # fmt: skip
    monitor = named(rendered, "ServiceMonitor", RELEASE)
    service = named(rendered, "Service", f"{RELEASE}-metrics")
    dep = named(rendered, "Deployment", RELEASE)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert selects(service["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"])
    optional = named(docs("optional/servicemonitor.yaml"), "ServiceMonitor", NS)
    assert monitor["spec"]["endpoints"] == optional["spec"]["endpoints"]


@needs_helm
def test_secret_readers_grant_what_the_optional_role_does_per_namespace() -> None:
    """`secretReaders`: one Role per namespace listed, the rules of
    manifests/optional/webhook-secret-reader.yaml with its Secrets, bound to the chart's
    ServiceAccount; none by default (the operator reads no Secret)."""
    assert not [d for d in template() if d["kind"] in ("Role", "RoleBinding")]
    rendered = template(*setting("secretReaders[0].namespace=shop",
                                 "secretReaders[0].secrets={pager,am-token}",
                                 "secretReaders[1].namespace=cafe",
                                 "secretReaders[1].secrets={pager}"))  # fmt: skip
    roles = {d["metadata"]["namespace"]: d for d in rendered if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in rendered if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"shop", "cafe"}
    optional = docs("optional/webhook-secret-reader.yaml")
    (rule,) = named(optional, "Role", "venue-operator-webhook-secret")["rules"]
    assert roles["shop"]["rules"] == [{**rule, "resourceNames": ["pager", "am-token"]}]
    assert roles["cafe"]["rules"] == [{**rule, "resourceNames": ["pager"]}]
    account = named(rendered, "ServiceAccount", RELEASE)["metadata"]
    for binding in bindings.values():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                        "namespace": account["namespace"]}]  # fmt: skip
        assert binding["roleRef"]["name"] == roles["shop"]["metadata"]["name"]


@needs_helm
def test_namespace_create_needs_a_name() -> None:
    result = helm("template", RELEASE, str(CHART), "--set", "namespace.create=true", check=False)
    assert result.returncode != 0 and "namespace.create needs namespace.name" in result.stderr


# --- the lab --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_monitor_crd(the_lab: Lab) -> Lab:
    """The Prometheus Operator's real ServiceMonitor CRD (tests/data), served by the lab."""
    install_prometheus_operator_crd(the_lab, "servicemonitors")
    return the_lab


def test_service_monitors_are_accepted_by_the_real_crd(service_monitor_crd: Lab) -> None:
    """manifests/optional/servicemonitor.yaml and the chart's, applied server-side to the
    real schema (which does validate: a scheme it does not know is refused)."""
    lab, kubectl = service_monitor_crd, service_monitor_crd.cluster.kubectl
    chart = template("--set", "serviceMonitor.enabled=true", "-s",
                     "templates/servicemonitor.yaml")  # fmt: skip
    with fresh_namespace(lab, "m") as ns:
        for monitor in (*docs("optional/servicemonitor.yaml"), *chart):
            monitor["metadata"]["namespace"] = ns
            kubectl("apply", "--server-side", "-f", "-", input=json.dumps(monitor))
            name = monitor["metadata"]["name"]
            stored = json.loads(kubectl("get", "servicemonitor", name, "-n", ns, "-o",
                                        "json").stdout)  # fmt: skip
            assert stored["spec"]["endpoints"] == monitor["spec"]["endpoints"]
        bad = json.loads(json.dumps(monitor))
        bad["metadata"]["name"] = "bad"
        bad["spec"]["endpoints"][0]["scheme"] = "ftp"
        refused = kubectl("apply", "--server-side", "-f", "-", input=json.dumps(bad),
                          check=False)  # fmt: skip
        assert refused.returncode != 0 and "scheme" in refused.stderr, refused.stderr


# --- NetworkPolicy --------------------------------------------------------------------


def peers_and_ports(rule: dict[str, Any], side: str) -> tuple[list[Any], set[tuple[Any, str]]]:
    return rule.get(side, []), {(p["port"], p["protocol"]) for p in rule["ports"]}


def check_network_policy(policy: dict[str, Any], pod_labels: dict[str, str]) -> None:
    """The operator's NetworkPolicy as the API server stored it: both directions closed but
    for metrics from `monitoring`, DNS, the API server, Prometheus and the services' 3002."""
    spec = policy["spec"]
    assert selects(spec["podSelector"]["matchLabels"], pod_labels)
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                        "monitoring"}}}  # fmt: skip
    (ingress,) = spec["ingress"]
    assert peers_and_ports(ingress, "from") == ([monitoring], {("metrics", "TCP")})
    egress = [peers_and_ports(rule, "to") for rule in spec["egress"]]
    dns, api, prometheus, services = egress
    assert dns[1] == {(53, "UDP"), (53, "TCP")}
    assert dns[0][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert api == ([], {(443, "TCP"), (6443, "TCP")})
    assert prometheus == ([monitoring], {(9090, "TCP")})
    assert services == ([{"namespaceSelector": {}}], {(3002, "TCP")})


def test_network_policies_are_admitted_with_these_rules(the_lab: Lab) -> None:
    """manifests/optional/networkpolicy.yaml and the chart's, applied with --dry-run=server:
    what the API server would store is checked rule by rule."""
    kubectl = the_lab.cluster.kubectl
    (optional,) = docs("optional/networkpolicy.yaml")
    rendered = template("--set", "networkPolicy.enabled=true")
    chart = named(rendered, "NetworkPolicy", RELEASE)
    kustomize_pod = named(docs("deployment.yaml"), "Deployment", NS)["spec"]["template"]
    chart_pod = named(rendered, "Deployment", RELEASE)["spec"]["template"]
    assert not [d for d in template() if d["kind"] == "NetworkPolicy"]  # off by default
    with fresh_namespace(the_lab, "n") as ns:
        for policy, pod in ((optional, kustomize_pod), (chart, chart_pod)):
            policy["metadata"]["namespace"] = ns
            out = kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-",
                          input=json.dumps(policy)).stdout  # fmt: skip
            check_network_policy(json.loads(out), pod["metadata"]["labels"])
        refused = json.loads(json.dumps(optional))
        refused["spec"]["egress"][0]["ports"][0]["protocol"] = "ICMP"
        result = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(refused),
                         check=False)  # fmt: skip
        assert result.returncode != 0 and "protocol" in result.stderr, result.stderr


@needs_helm
def test_chart_network_policy_narrows_the_api_server_to_given_addresses() -> None:
    rendered = template("--set", "networkPolicy.enabled=true",
                        "--set", "networkPolicy.apiServerCidrs={10.96.0.1/32}")  # fmt: skip
    api = named(rendered, "NetworkPolicy", RELEASE)["spec"]["egress"][1]
    assert api["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}]


@needs_helm
def test_tenant_boundaries_and_prometheus_credentials_reach_the_pod() -> None:
    settings = ("tenancy.maxReplicas=5", "tenancy.allowServiceCidrs={10.0.0.0/8}",
                "tenancy.actNamespaces={prod-*}", "prometheusCredentials.secretName=prom-auth",
                "prometheusCredentials.ca=true")  # fmt: skip
    rendered = template(*(arg for s in settings for arg in ("--set", s)))
    pod = named(rendered, "Deployment", RELEASE)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for arg in ("--max-replicas=5", "--allow-service-cidr=10.0.0.0/8", "--act-namespace=prod-*",
                "--prometheus-bearer-token-file=/var/run/prometheus/token",
                "--prometheus-ca-file=/var/run/prometheus/ca.crt"):  # fmt: skip
        assert arg in container["args"], arg
    assert {"name": "prometheus-credentials", "secret": {"secretName": "prom-auth"}} in pod[
        "volumes"
    ]
    assert any(m["name"] == "prometheus-credentials" for m in container["volumeMounts"])


@needs_helm
def test_alertmanager_url_reaches_the_pod_and_opens_its_egress() -> None:
    default = named(template(), "Deployment", RELEASE)["spec"]["template"]["spec"]["containers"]
    assert not [a for a in default[0]["args"] if "alertmanager" in a]  # off by default
    rendered = template("--set", "alertmanagerUrl=http://am.monitoring.svc:9093",
                        "--set", "tenancy.allowAlertmanagerUrls={http://team-am.shop.svc:9093}",
                        "--set", "networkPolicy.enabled=true")  # fmt: skip
    (container,) = named(rendered, "Deployment", RELEASE)["spec"]["template"]["spec"]["containers"]
    for arg in ("--alertmanager-url=http://am.monitoring.svc:9093",
                "--alertmanager-resend-interval=60",
                "--allow-alertmanager-url=http://team-am.shop.svc:9093"):  # fmt: skip
        assert arg in container["args"], arg
    egress = named(rendered, "NetworkPolicy", RELEASE)["spec"]["egress"]
    assert any(p["port"] == 9093 for rule in egress for p in rule["ports"])
    # Only tenants' own Alertmanagers: their alerts are re-sent at the interval set too.
    tenants_only = template("--set", "tenancy.allowAlertmanagerUrls={http://team-am.shop.svc:9093}",
                            "--set", "alertmanagerResendSeconds=30")  # fmt: skip
    (container,) = named(tenants_only, "Deployment", RELEASE)["spec"]["template"]["spec"][
        "containers"]  # fmt: skip
    assert "--alertmanager-resend-interval=30" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--alertmanager-url")]
