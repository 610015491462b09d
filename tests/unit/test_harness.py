"""The lab tests' own helpers, where a silent mistake turns a wait into a timeout (the
evaluation counter is read from the operator's real metric, in its real exposition format)."""

from __future__ import annotations

from prometheus_client import generate_latest

from tests.harness import evaluation_count
from venue_operator import telemetry


def test_evaluation_count_reads_the_operators_own_counter() -> None:
    telemetry.EVALUATIONS.labels("unit-harness", "venue-service").inc(3)
    telemetry.EVALUATIONS.labels("unit-harness", "other").inc(7)
    text = generate_latest().decode()
    assert evaluation_count(text, "unit-harness", "venue-service") == 3
    assert evaluation_count(text, "unit-harness", "other") == 7
    assert evaluation_count(text, "unit-harness-2", "venue-service") == 0
