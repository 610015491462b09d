"""observe/scalers.py: what the HPA index keeps, which HPA scales a Deployment, and when the
ScaledObject behind it is worth a GET."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from venue_operator.model.observations import Scaler, WorkloadState
from venue_operator.model.status import (
    CapacityLoan,
    CheckStatus,
    Level,
    ScaledKind,
    VenueServiceStatus,
)
from venue_operator.observe import scalers

KEDA_OWNER = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "so",
              "uid": "u", "controller": True}  # fmt: skip


def hpa(target_kind: str = "Deployment", owners: list[dict[str, Any]] | None = None,
        **spec: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"name": "h", "ownerReferences": owners or []},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind,
                                    "name": "venue"}, "maxReplicas": 10, **spec},
    }  # fmt: skip


SUMMARIES = [
    ("an HPA on a Deployment", hpa(minReplicas=2),
     {"name": "h", "deployment": "venue", "min": 2, "max": 10, "scaled_object": None}),
    ("minReplicas unset: the API's default 1", hpa(), {"min": 1}),
    ("owned by a KEDA ScaledObject", hpa(owners=[KEDA_OWNER]), {"scaled_object": "so"}),
    ("owned by something else named ScaledObject", hpa(owners=[
        {**KEDA_OWNER, "apiVersion": "example.com/v1"}]), {"scaled_object": None}),
    ("an HPA on a StatefulSet: not ours", hpa("StatefulSet"), None),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), [s[1:] for s in SUMMARIES],
                         ids=[s[0] for s in SUMMARIES])  # fmt: skip
def test_hpa_summary(body: dict[str, Any], expected: dict[str, Any] | None) -> None:
    summary = scalers.hpa_summary(body)
    if expected is None:
        assert summary is None
    else:
        assert summary is not None and expected.items() <= summary.items()


def test_two_hpas_on_one_deployment_the_first_by_name() -> None:
    found = [{"name": n, "min": 2, "max": 5, "scaled_object": None} for n in ("b", "a")]
    assert scalers.scaler_of(found) == Scaler(hpa="a", min_replicas=2, max_replicas=5)
    assert scalers.scaler_of([]) is None


KEDA_SCALED = WorkloadState(found=True, scaler=Scaler(hpa="h", min_replicas=2, max_replicas=10,
                                                      scaled_object="so"))  # fmt: skip
PLAIN_HPA = WorkloadState(found=True, scaler=Scaler(hpa="h", min_replicas=2, max_replicas=10))
CRITICAL = VenueServiceStatus(checks=[CheckStatus(name="p99_latency", level=Level.CRITICAL,
                                                  section="High Latency")])  # fmt: skip
DB_DOWN = VenueServiceStatus(checks=[CheckStatus(name="database", level=Level.CRITICAL,
                                                 section="Database Failures")])  # fmt: skip
SO_LOAN = CapacityLoan(kind=ScaledKind.SCALED_OBJECT, name="so", field="spec.minReplicaCount",
                       original=2, written=3, at=datetime(2026, 11, 27, tzinfo=UTC))  # fmt: skip
LENT = VenueServiceStatus(capacity=SO_LOAN)
HPA_LENT = VenueServiceStatus(capacity=SO_LOAN.model_copy(
    update={"kind": ScaledKind.HPA, "name": "h", "field": "spec.minReplicas"}))  # fmt: skip
NEEDED = [
    ("KEDA, all well: no GET", KEDA_SCALED, VenueServiceStatus(), False),
    ("KEDA, a capacity check critical: a scale-up may follow", KEDA_SCALED, CRITICAL, True),
    ("KEDA, the database down: no scale-up follows, no GET", KEDA_SCALED, DB_DOWN, False),
    ("KEDA, the ScaledObject lent: a restore may follow", KEDA_SCALED, LENT, True),
    ("KEDA took over an HPA we lent: abandoned without its counts", KEDA_SCALED, HPA_LENT, False),
    ("a plain HPA: never (the index has it)", PLAIN_HPA, CRITICAL, False),
    ("no HPA: never", WorkloadState(found=True), CRITICAL, False),
]


@pytest.mark.parametrize(("workload", "status", "needed"), [n[1:] for n in NEEDED],
                         ids=[n[0] for n in NEEDED])  # fmt: skip
def test_scaled_object_needed(workload: WorkloadState, status: VenueServiceStatus,
                              needed: bool) -> None:  # fmt: skip
    assert scalers.scaled_object_needed(workload, status) is needed
