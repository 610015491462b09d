"""A deleted VenueService leaves no series behind in the operator's own metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from venue_operator import telemetry


def series_of(namespace: str, name: str) -> list[str]:
    return [
        f"{sample.name}{sample.labels}"
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.labels.get("namespace") == namespace and sample.labels.get("name") == name
    ]


def test_forget_drops_every_series_of_one_service_only() -> None:
    for name in ("gone", "stays"):
        telemetry.EVALUATIONS.labels("ns", name).inc()
        telemetry.ERRORS.labels("ns", name).inc()
        telemetry.CHECK_LEVEL.labels("ns", name, "error_rate").set(2)
        telemetry.CHECK_LEVEL.labels("ns", name, "memory").set(0)
    telemetry.forget("ns", "gone")
    assert series_of("ns", "gone") == []
    assert len(series_of("ns", "stays")) >= 4
    telemetry.forget("ns", "never-seen")  # nothing to drop: no error
    telemetry.forget("ns", "stays")
