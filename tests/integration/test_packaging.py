"""Packaging on the real lab: `kubectl apply -k manifests/`, least-privilege RBAC proved with
`kubectl auth can-i`, the operator doing a real rollback as its ServiceAccount (not admin),
the Deployment under Pod Security "restricted", and the Dockerfile's entrypoint."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.aio import client, config

from tests.harness import fresh_namespace, rolls_back_a_bad_rollout
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.act import breaker, migration
from venue_operator.model.crd import CRD_PATH

# module-scoped fixtures: the whole module runs on one xdist worker, in order
pytestmark = pytest.mark.xdist_group("test_packaging")

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
NS = "venue-operator"
SA = f"system:serviceaccount:{NS}:venue-operator"
GROUP = "ops.tickettoken.io"

# Every API call the operator makes (its own code and Kopf's), and why. The ClusterRole in
# manifests/rbac.yaml must grant exactly this: no more (test_cluster_role_is_exactly_...).
NEEDED: dict[tuple[str, str], set[str]] = {
    (GROUP, "venueservices"): {"get", "list", "watch", "patch"},  # Kopf; `check` GETs
    (GROUP, "venueservices/status"): {"patch"},  # kube.patch_status
    ("apps", "deployments"): {"get", "list", "watch", "patch"},  # index; rollback, scale
    ("apps", "replicasets"): {"list", "watch"},  # index; rollback target
    ("", "pods"): {"list", "watch"},  # index
    ("batch", "jobs"): {"get", "list", "watch", "create"},  # index; migration Job
    ("batch", "cronjobs"): {"get"},  # the migration Job's template
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch", "patch"},  # minReplicas
    ("keda.sh", "scaledobjects"): {"get", "patch"},  # minReplicaCount
    ("", "configmaps"): {"get", "create", "patch"},  # circuit breaker
    ("", "events"): {"create"},  # Kopf posts core v1 Events
    ("", "namespaces"): {"list", "watch"},  # Kopf: namespace globs (-n 'prod-*')
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},  # Kopf
}
# Read by name only: the API server's addresses (observe/targets.py), so no probe reaches it
NAMED: dict[tuple[str, str], tuple[set[str], list[str]]] = {
    ("", "services"): ({"get"}, ["kubernetes"]),
    ("discovery.k8s.io", "endpointslices"): ({"get"}, ["kubernetes"]),
}
DENIED = [  # (verb, group, resource)
    ("get", "", "secrets"),
    ("list", "", "secrets"),
    ("list", "", "services"),
    ("get", "discovery.k8s.io", "endpointslices"),  # any but `kubernetes`
    ("watch", "", "secrets"),
    ("delete", "apps", "deployments"),
    ("create", "apps", "deployments"),
    ("update", "apps", "deployments"),
    ("create", "", "pods"),
    ("create", "", "pods/exec"),
    ("delete", "", "pods"),
    ("patch", "", "nodes"),
    ("*", "*", "*"),
    ("delete", GROUP, "venueservices"),
    ("update", GROUP, "venueservices"),
    ("get", GROUP, "venueservices/status"),
    ("patch", "", "events"),
    ("create", "events.k8s.io", "events"),
    ("delete", "batch", "jobs"),
    ("patch", "batch", "cronjobs"),
    ("delete", "", "configmaps"),
    ("create", "", "serviceaccounts/token"),
    ("impersonate", "", "serviceaccounts"),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
    ("bind", "rbac.authorization.k8s.io", "clusterroles"),
    ("patch", "apiextensions.k8s.io", "customresourcedefinitions"),
]


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def of_kind(items: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in items if d["kind"] == kind]
    return found


def can_i(
    lab: Lab, verb: str, group: str, resource: str, *scope: str, resource_name: str = ""
) -> bool:
    """`kubectl auth can-i` as the operator's ServiceAccount; anything but yes/no fails.
    `resource` may name a subresource (`venueservices/status`)."""
    name, _, sub = resource.partition("/")
    if group and group != "*":
        name = f"{name}.{group}"
    if resource_name:
        name = f"{name}/{resource_name}"
    args = ["auth", "can-i", verb, name, f"--as={SA}", *(scope or ("--all-namespaces",))]
    if sub:
        args.append(f"--subresource={sub}")
    result = lab.cluster.kubectl(*args, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {verb} {resource}: {result.stderr}"
    return answer == "yes"


# --- kustomize ------------------------------------------------------------------------


def test_kustomization_includes_the_generated_crd_and_not_the_examples(the_lab: Lab) -> None:
    out = the_lab.cluster.kubectl("kustomize", str(MANIFESTS)).stdout
    built = [d for d in yaml.safe_load_all(out) if d]
    kinds = sorted(d["kind"] for d in built)
    assert kinds == sorted(["Namespace", "CustomResourceDefinition", "ServiceAccount",
                            "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding",
                            "Deployment", "Service"])  # fmt: skip
    crd = of_kind(built, "CustomResourceDefinition")
    crd_name = crd["metadata"]["name"]
    assert crd == yaml.safe_load((REPO / CRD_PATH).read_text()), "not the generated CRD"
    assert of_kind(built, "Deployment")["metadata"]["name"] == "venue-operator"
    roles = {d["metadata"]["name"] for d in built if d["kind"] == "ClusterRole"}
    assert roles == {"venue-operator", "venueservices-view", "venueservices-edit"}
    # crds/Kustomization is invisible to `kubectl apply -f crds/` (no .yaml extension).
    plain = the_lab.cluster.kubectl("apply", "-f", str(REPO / "crds"), "--dry-run=server")
    (applied,) = plain.stdout.splitlines()
    assert applied.startswith(f"customresourcedefinition.apiextensions.k8s.io/{crd_name} ")


def test_apply_k_server_dry_run(installed: Lab) -> None:
    # The namespace exists (the fixture): a dry run cannot create it for the objects in it.
    result = installed.cluster.kubectl("apply", "-k", str(MANIFESTS), "--dry-run=server")
    assert "deployment.apps/venue-operator" in result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr


# --- RBAC -----------------------------------------------------------------------------


def test_namespace_users_get_venueservices_through_the_built_in_roles(the_lab: Lab) -> None:
    """manifests/user-roles.yaml aggregates into view/edit/admin (the real aggregation
    controller): a viewer reads, an editor writes, nobody but the operator writes status."""
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-f", str(MANIFESTS / "user-roles.yaml"))
    with fresh_namespace(the_lab, "u") as ns:
        for user, role in (("alice", "view"), ("bob", "edit")):
            kubectl("create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}",
                    f"--user={user}", "-n", ns)  # fmt: skip

        def may(user: str, verb: str, sub: str = "") -> bool:
            extra = (f"--subresource={sub}",) if sub else ()
            out = kubectl("auth", "can-i", verb, f"venueservices.{GROUP}", f"--as={user}",
                          "-n", ns, *extra, check=False).stdout.strip()  # fmt: skip
            return out == "yes"

        wait_until("view aggregated", lambda: may("alice", "list"), 30, interval=0.5)
        wait_until("edit aggregated", lambda: may("bob", "create"), 30, interval=0.5)
        assert may("alice", "get") and may("alice", "watch")
        assert not may("alice", "create") and not may("alice", "patch")
        assert may("bob", "patch") and may("bob", "delete") and may("bob", "list")
        assert not may("bob", "patch", "status") and not may("alice", "patch", "status")
        assert not may("carol", "list"), "no binding, no access"


def test_cluster_role_is_exactly_what_the_operator_uses() -> None:
    role = of_kind(docs(MANIFESTS / "rbac.yaml"), "ClusterRole")
    granted: dict[tuple[str, str], set[str]] = {}
    named: dict[tuple[str, str], tuple[set[str], list[str]]] = {}
    for rule in role["rules"]:
        for field in rule.values():
            assert "*" not in field, rule
        if "resourceNames" in rule:
            (group,), (resource,) = rule["apiGroups"], rule["resources"]
            named[(group, resource)] = (set(rule["verbs"]), rule["resourceNames"])
            continue
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no names, no URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == NEEDED
    assert named == NAMED
    assert not any(resource == "secrets" for _, resource in granted)


@pytest.mark.parametrize(
    ("verb", "group", "resource"),
    [
        pytest.param(verb, group, resource, id=f"{verb} {resource}")
        for (group, resource), verbs in NEEDED.items()
        for verb in sorted(verbs)
    ],
)
def test_service_account_can(installed: Lab, verb: str, group: str, resource: str) -> None:
    assert can_i(installed, verb, group, resource)


def test_service_account_reads_the_api_servers_addresses_by_name(installed: Lab) -> None:
    for (group, resource), (verbs, names) in NAMED.items():
        for verb in verbs:
            for name in names:
                assert can_i(installed, verb, group, resource, "-n", "default",
                             resource_name=name)  # fmt: skip


@pytest.mark.parametrize(
    ("verb", "group", "resource"), DENIED, ids=[f"{v} {g}/{r}" for v, g, r in DENIED]
)
def test_service_account_cannot(installed: Lab, verb: str, group: str, resource: str) -> None:
    assert not can_i(installed, verb, group, resource)
    assert not can_i(installed, verb, group, resource, "-n", "default")


def test_optional_webhook_secret_role_grants_one_secret(installed: Lab) -> None:
    objects = docs(MANIFESTS / "optional" / "webhook-secret-reader.yaml")
    with fresh_namespace(installed, "p") as ns:
        for obj in objects:
            obj["metadata"]["namespace"] = ns
        installed.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
        secret = of_kind(objects, "Role")["rules"][0]["resourceNames"][0]
        assert can_i(installed, "get", "", "secrets", "-n", ns, resource_name=secret)
        assert not can_i(installed, "get", "", "secrets", "-n", ns, resource_name="another")
        assert not can_i(installed, "list", "", "secrets", "-n", ns)
        assert not can_i(installed, "get", "", "secrets", "-n", "default", resource_name=secret)
    # Not applied by default.
    assert "optional" not in (MANIFESTS / "kustomization.yaml").read_text().split("resources:")[1]


# --- the operator as its ServiceAccount -----------------------------------------------


async def test_write_paths_work_as_the_service_account(installed: Lab) -> None:
    """The writes the rollback scenario does not reach: breaker ConfigMap, migration Job."""
    kubeconfig = installed.cluster.kubeconfig_for("venue-operator", NS)
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    with fresh_namespace(installed, "r") as ns:
        cronjob = {
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "venue-migrate"},
            "spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": {
                "template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "migrate", "image": "gcr.io/tickettoken/venue-service:v1"}]}}}}},
        }  # fmt: skip
        installed.cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(cronjob))
        async with client.ApiClient(configuration=cfg) as api:
            name = "venue-service-circuit-breaker"
            opened = await breaker.set_circuit(api, ns, name, "open", True, "test", "db down")
            closed = await breaker.set_circuit(api, ns, name, "open", False, "test", "db up")
            assert opened.changed and "created" in opened.message and closed.changed
            started = await migration.run_migration(api, ns, "venue-migrate", "rid-1")
            assert started.changed
            job = migration.job_name("venue-migrate", "rid-1")
            assert await _settled_outcome(api, ns, job) == "Succeeded"  # kwok completes its pod
            assert await migration.job_outcome(api, ns, "no-such-job") == "Failed"  # gone = failed
            again = await migration.run_migration(api, ns, "venue-migrate", "rid-1")
            assert not again.changed  # exists: the 409 path


async def _settled_outcome(api: client.ApiClient, ns: str, job: str) -> str:
    """The Job's outcome once it has one (kwok runs its pod to completion in seconds)."""
    async with asyncio.timeout(60):
        while True:
            outcome = await migration.job_outcome(api, ns, job)
            if outcome is not None:
                return outcome
            await asyncio.sleep(0.25)  # polling the API server, under the deadline above


def test_operator_as_service_account_rolls_back_a_bad_rollout(installed: Lab) -> None:
    with fresh_namespace(installed, "r") as ns:
        # Only r-* namespaces: the session operator (t-*) never acts here.
        as_sa = OperatorProcess(installed.cluster.kubeconfig_for("venue-operator", NS),
                                installed.prometheus.url, namespaces=("r-*",))  # fmt: skip
        with rolls_back_a_bad_rollout(installed, ns, as_sa):
            pass


# --- the Deployment and the image -----------------------------------------------------


def test_deployment_passes_restricted_pod_security(installed: Lab) -> None:
    kubectl = installed.cluster.kubectl
    namespace = of_kind(docs(MANIFESTS / "namespace.yaml"), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    applied = json.loads(kubectl("get", "namespace", NS, "-o", "json").stdout)
    assert applied["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    dep = of_kind(docs(MANIFESTS / "deployment.yaml"), "Deployment")
    result = kubectl("apply", "-f", str(MANIFESTS / "deployment.yaml"), "--dry-run=server")
    assert "PodSecurity" not in result.stderr, result.stderr
    # Enforcement applies to pods: the template as a Pod is admitted...
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "psa", "namespace": NS},
           "spec": dep["spec"]["template"]["spec"]}  # fmt: skip
    kubectl("create", "-f", "-", "--dry-run=server", input=json.dumps(pod))
    # ...and the same Pod, one field weaker, is not (the namespace really enforces).
    weaker = json.loads(json.dumps(pod))
    weaker["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = kubectl("create", "-f", "-", "--dry-run=server", input=json.dumps(weaker),
                      check=False)  # fmt: skip
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr

    spec = dep["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod_spec = spec["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "venue-operator"
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] == 10001
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod_spec["containers"]
    assert container["image"] == f"venue-operator:{version('venue-operator')}"
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod_spec["volumes"]
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe["path"] == "/healthz" and ports[probe["port"]] == 8080
    assert set(container["resources"]) == {"requests", "limits"}


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), per stage; the
    first list holds those before the first FROM (the base's ARG)."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def test_dockerfile_entrypoint_cmd_and_deployment_args_run_from_the_installed_package() -> None:
    runtime = dockerfile_stages()[-1]
    entrypoint = json.loads(next(r for i, r in reversed(runtime) if i == "ENTRYPOINT"))
    cmd = json.loads(next(r for i, r in reversed(runtime) if i == "CMD"))
    assert entrypoint == ["venue-operator"]
    binary = Path(sys.executable).parent / entrypoint[0]
    dep = of_kind(docs(MANIFESTS / "deployment.yaml"), "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    for argv in ([], ["run"], cmd, args):
        result = subprocess.run([str(binary), *entrypoint[1:], *argv, "--help"],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        assert result.returncode == 0, (argv, result.stderr)
        assert result.stdout.startswith("usage: venue-operator"), argv
    assert "--bind-address=0.0.0.0" in cmd and "--bind-address=0.0.0.0" in args
    assert cmd[0] == args[0] == "--log-json"  # log pipelines get JSON, Kopf's lines included


def test_dockerfile_installs_the_locked_dependencies_on_a_digest_pinned_base() -> None:
    (base,), builder, runtime = dockerfile_stages()
    assert base[0] == "ARG" and base[1].startswith("BASE=")
    # Never a floating tag: a rebuild gets the same base (scripts/image passes a local one).
    assert re.fullmatch(r"BASE=docker\.io/library/python:3\.11\.\d+-slim-bookworm"
                        r"@sha256:[0-9a-f]{64}", base[1]), base[1]  # fmt: skip
    assert builder[0] == ("FROM", "${BASE} AS builder") and runtime[0] == ("FROM", "${BASE}")
    runs = " ".join(" ".join(rest.split()) for i, rest in builder if i == "RUN")
    for lock in ("runtime.txt", "build.txt"):  # every download hash-checked, none built here
        assert f"--require-hashes --only-binary=:all: -r requirements/{lock}" in runs
    assert "--no-deps --no-build-isolation" in runs  # the operator itself: nothing else fetched


def test_dockerfile_runtime_stage_copies_only_the_venv_and_runs_as_10001() -> None:
    runtime = dockerfile_stages()[-1]
    copies = [rest for i, rest in runtime if i in ("COPY", "ADD")]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    runs = " ".join(rest for i, rest in runtime if i == "RUN")
    assert not re.search(r"apt-get|apk|pip|gcc|build-essential", runs), runs
    assert ("USER", "10001:10001") in runtime
