"""The spec model: runbook defaults, durations, cross-field rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from venue_operator.model.durations import format_duration, parse_duration
from venue_operator.model.remediation import Mode
from venue_operator.model.spec import RUNBOOK_PORT, VenueServiceSpec, with_shared_parts


def minimal(**spec: object) -> VenueServiceSpec:
    return VenueServiceSpec.model_validate({"deployment": {"name": "venue-service"}, **spec})


def test_defaults_are_the_runbooks_thresholds() -> None:
    t = minimal().thresholds
    assert (t.error_rate_percent.warning, t.error_rate_percent.critical) == (1, 5)
    assert (t.p99_latency_ms.warning, t.p99_latency_ms.critical) == (500, 2000)
    assert (t.pool_utilisation_percent.warning, t.pool_utilisation_percent.critical) == (70, 90)
    assert (t.memory_percent.warning, t.memory_percent.critical) == (70, 85)


def test_defaults_for_probe_and_policy() -> None:
    spec = minimal()
    assert spec.service.health_path == "/health"
    assert spec.service.full_health_path == "/health/full"
    assert spec.probe.interval == timedelta(seconds=15)
    assert spec.remediation.mode is Mode.AUTO
    assert spec.remediation.migration.cron_job_name == "venue-migrate"
    assert spec.notification is None


def test_the_rollout_guard_reads_pods_on_the_runbooks_port_and_paths() -> None:
    pods = minimal().rollout_guard.pods
    assert (pods.port, pods.scheme) == (RUNBOOK_PORT, "http")
    assert (pods.metrics_path, pods.health_path) == ("/metrics", minimal().service.full_health_path)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("250ms", 0.25), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "15", "s", "-1s", "1d", "PT15S", "1 s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(15, "15s"), (90, "1m30s"), (3600, "1h"), (0.25, "250ms"), (0, "0s")]
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_camel_case_on_the_wire() -> None:
    spec = minimal(probe={"interval": "30s", "timeout": "5s"})
    wire = spec.model_dump(mode="json", by_alias=True)
    assert wire["probe"] == {"interval": "30s", "timeout": "5s"}
    assert wire["thresholds"]["p99LatencyMs"] == {"warning": 500, "critical": 2000}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"thresholds": {"errorRatePercent": {"warning": 5, "critical": 1}}}, "below critical"),
        ({"remediation": {"scale": {"minReplicas": 5, "maxReplicas": 2}}}, "minReplicas"),
        ({"probe": {"interval": "2s", "timeout": "5s"}}, "shorter than"),
        ({"probe": {"interval": "soon"}}, "invalid duration"),
        ({"remediation": {"scale": {"restoreAfter": "never"}}}, "invalid duration"),
        ({"remediation": {"mode": "Yolo"}}, "Auto"),
        ({"unknownField": 1}, "Extra inputs"),
        ({"notification": {"format": "PagerDuty"}}, "webhookSecretRef, alertmanager or both"),
    ],
)
def test_invalid_specs_are_rejected(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        minimal(**spec)


def test_restore_after_defaults_to_30m_and_0s_means_never() -> None:
    assert minimal().remediation.scale.restore_after == timedelta(minutes=30)
    never = minimal(remediation={"scale": {"restoreAfter": "0s"}})
    assert never.remediation.scale.restore_after == timedelta(0)
    wire = never.model_dump(mode="json", by_alias=True)
    assert wire["remediation"]["scale"]["restoreAfter"] == "0s"


def test_equal_parts_of_two_specs_are_held_once() -> None:
    """The loops keep their validated specs: the defaults most of them share are one object."""
    one, two, slow = (with_shared_parts(VenueServiceSpec.model_validate(raw)) for raw in (
        {"deployment": {"name": "a"}},
        {"deployment": {"name": "b"}, "service": {"url": "http://b.shop:3002"}},
        {"deployment": {"name": "c"}, "probe": {"interval": "1m"}},
    ))  # fmt: skip
    assert one.remediation is two.remediation is slow.remediation
    assert one.probe is two.probe and slow.probe is not one.probe
    assert one.deployment is not two.deployment and one.service is not two.service
    assert two == VenueServiceSpec.model_validate(
        {"deployment": {"name": "b"}, "service": {"url": "http://b.shop:3002"}}
    )
