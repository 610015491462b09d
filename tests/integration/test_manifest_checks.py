"""What a platform team's pipeline runs on the manifests before installing them: kubeconform
(each object against the schema of its kind: Kubernetes v1.36's, the VenueService CRD's, the
vendored upstream CRDs' and Kopf's peering CRDs'; unknown fields refused) and kube-score,
over `helm template` (defaults, and every option on) and `kubectl kustomize manifests/`; the
optional manifests and the examples go through kubeconform too. kube-score's findings are
fixed but for KUBE_SCORE_IGNORED (tests/manifest_checks.py), each with its reason.

The tools are Go modules built from the proxy (tools/kubeconform, tools/kube-score): the
full tier only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests import upstream_crds
from tests.chart import EVERY_OPTION, REPO, kustomized_text, rendered, setting
from tests.manifest_checks import (
    KUBE_SCORE_IGNORED,
    crd_schemas,
    failed_checks,
    kube_score,
    kubeconform,
    kubernetes_openapi,
    kubernetes_schemas,
    write_schemas,
)
from venue_operator.model.crd import CRD_PATH

pytestmark = pytest.mark.cluster  # Go-built binaries

RENDERINGS: dict[str, Callable[[], str]] = {
    "chart defaults": rendered,
    "chart with every option": lambda: rendered(*setting(*EVERY_OPTION)),
    "kustomize": kustomized_text,
}


def files(*patterns: str) -> str:
    paths = sorted(p for pattern in patterns for p in (REPO / "manifests").glob(pattern))
    return "".join(f"---\n{path.read_text()}" for path in paths)


def count(manifests: str) -> int:
    return sum(1 for d in yaml.safe_load_all(manifests) if d)


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    crds = [REPO / CRD_PATH, REPO / "manifests" / "optional" / "peering-crds.yaml",
            *sorted(upstream_crds.DATA.glob("*/*.yaml"))]  # fmt: skip
    made = {**kubernetes_schemas(kubernetes_openapi()), **crd_schemas(crds)}
    return write_schemas(tmp_path_factory.mktemp("kubeconform"), made)


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_kubeconform_finds_every_rendered_object_valid(schemas: Path, rendering: str) -> None:
    manifests = RENDERINGS[rendering]()
    result = kubeconform(manifests, schemas)
    assert result.problems == ()
    assert result.valid == count(manifests) >= 8


def test_kubeconform_finds_the_optional_manifests_and_examples_valid(schemas: Path) -> None:
    """ServiceMonitor, PrometheusRule (their upstream CRDs), ClusterKopfPeering, the example
    VenueService (our CRD) and workload, NetworkPolicy, RBAC."""
    manifests = files("optional/*.yaml", "examples/*.yaml")
    result = kubeconform(manifests, schemas)
    assert result.problems == ()
    assert result.valid == count(manifests) >= 14


BROKEN = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: typo}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: i, ports: [{containerPort: abc}]}]}
---
apiVersion: ops.tickettoken.io/v1alpha1
kind: VenueService
metadata: {name: typo}
spec: {deployment: {name: venue}, servce: {url: "http://venue:3002"}}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: bad-scheme}
spec: {selector: {}, endpoints: [{port: metrics, scheme: ftp}]}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: unknown-kind}
"""


def test_kubeconform_refuses_what_the_api_server_would(schemas: Path) -> None:
    """Not vacuous: unknown fields, wrong types, enum values and unknown kinds are found."""
    result = kubeconform(BROKEN, schemas)
    assert result.valid == 0
    found = "\n".join(result.problems)
    for expected in ("additional properties 'replica' not allowed",
                     "containerPort': got string, want integer",
                     "additional properties 'servce' not allowed",
                     "scheme': value must be one of",
                     "could not find schema for Widget"):  # fmt: skip
        assert expected in found, found


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_kube_score_finds_nothing_but_the_justified_exceptions(rendering: str) -> None:
    passed, findings = kube_score(RENDERINGS[rendering](), ignored=KUBE_SCORE_IGNORED)
    assert findings == []
    assert passed >= 20


def test_every_kube_score_exception_is_still_needed() -> None:
    """An exception whose check passes now (fixed, or the tool changed) must go."""
    assert failed_checks(rendered()) == set(KUBE_SCORE_IGNORED)
