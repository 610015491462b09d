"""act/scale.py against the real API server: an HPA's minReplicas raised with the original
in an annotation, idempotently, with a resourceVersion test; a restore only over the value the
operator wrote, and the annotation removed once all is given back."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio import client

from tests.e2e.test_coexistence import hpa_manifest
from tests.harness import deployment_manifest, get
from venue_lab.session import Lab
from venue_operator.act import ActError, scale
from venue_operator.kube import calls
from venue_operator.model.keys import SCALED_FROM
from venue_operator.model.status import ScaledKind


def hpa(lab: Lab, ns: str) -> dict[str, Any]:
    return get(lab, "hpa", ns, "venue-service")


async def test_hpa_min_raised_restored_and_never_over_somebody_elses_value(
    the_lab: Lab, namespace: str, api: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-n", namespace, "-f", "-", input=deployment_manifest("venue-service"))
    kubectl("create", "-n", namespace, "-f", "-", input=hpa_manifest("venue-service"))
    assert "annotations" not in hpa(the_lab, namespace)["metadata"]  # `create`: none at all
    hpa_kind = ScaledKind.HPA

    raised = await scale.set_count(api, namespace, hpa_kind, "venue-service", 3, 2)
    assert raised.changed and hpa(the_lab, namespace)["spec"]["minReplicas"] == 3
    assert hpa(the_lab, namespace)["metadata"]["annotations"] == {SCALED_FROM: "2"}
    again = await scale.set_count(api, namespace, hpa_kind, "venue-service", 3, 2)
    assert not again.changed  # idempotent: a rerun after a crash writes nothing

    # A second writer between our read and our write: the resourceVersion test fails, we
    # read again and write over the new object, losing nothing.
    original = calls.get_hpa
    reads: list[dict[str, Any]] = []

    async def read_then_interfere(api: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
        reads.append(await original(api, ns, name))
        if len(reads) == 1:
            kubectl("annotate", "hpa", "venue-service", "-n", ns, "team=payments")
        return reads[-1]

    monkeypatch.setattr(calls, "get_hpa", read_then_interfere)
    up = await scale.set_count(api, namespace, hpa_kind, "venue-service", 4, 2)
    assert up.changed and len(reads) == 2
    assert hpa(the_lab, namespace)["metadata"]["annotations"]["team"] == "payments"
    monkeypatch.setattr(calls, "get_hpa", original)

    with pytest.raises(ActError, match="is 4, not the 3 the operator wrote"):
        await scale.set_count(api, namespace, hpa_kind, "venue-service", 2, None, expect=3)
    assert hpa(the_lab, namespace)["spec"]["minReplicas"] == 4
    back = await scale.set_count(api, namespace, hpa_kind, "venue-service", 2, None, expect=4)
    assert back.changed
    restored = hpa(the_lab, namespace)
    assert restored["spec"]["minReplicas"] == 2
    assert SCALED_FROM not in restored["metadata"]["annotations"]
