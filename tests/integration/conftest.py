"""Fixtures shared by the integration tests that call the operator's own code against the lab."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes.aio import client

from tests import upstream_crds
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.kube import calls

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


@pytest.fixture
async def api(the_lab: Lab) -> AsyncIterator[client.ApiClient]:
    """An API client as the operator makes one (kube.connect), on the lab's kubeconfig."""
    connection = await calls.connect(str(the_lab.cluster.kubeconfig))
    yield connection
    await connection.close()


@pytest.fixture(scope="module")
def installed(the_lab: Lab) -> Iterator[Lab]:
    """The namespace and the RBAC part of manifests/, applied for real (test_packaging,
    test_image); KEDA's ScaledObject CRD too (never deleted: other tests share it), as
    `kubectl auth can-i` resolves resources by discovery and answers "no" for one the API
    server does not serve. The namespace a module before on this worker deleted is waited
    out first: a ServiceAccount cannot be created in a namespace being terminated."""
    kubectl = the_lab.cluster.kubectl
    upstream_crds.install(the_lab, upstream_crds.DATA / "keda" / "keda.sh_scaledobjects.yaml")
    files = ("-f", str(MANIFESTS / "namespace.yaml"), "-f", str(MANIFESTS / "rbac.yaml"))
    gone = ("get", "-f", str(MANIFESTS / "namespace.yaml"), "--ignore-not-found", "-o", "name")
    wait_until("namespace of manifests/ deleted", lambda: not kubectl(*gone).stdout.strip(), 60)
    kubectl("apply", *files)
    yield the_lab
    kubectl("delete", *files, "--ignore-not-found", "--wait=false", check=False)
