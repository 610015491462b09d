"""Alertmanager as a notification sink: a bad rollout's incident fires an alert in the real
Alertmanager, grouped by VenueService, and resolves when the rollback heals the service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import (
    BAD_IMAGE,
    FAST,
    TOKEN,
    Receiver,
    Venue,
    fresh_namespace,
    set_image,
    venue_manifest,
    venue_outside_session,
)
from venue_lab.alertmanager import LocalAlertmanager
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab

SINK = {"notification": {"alertmanager": {"bearerTokenSecretRef": {"name": "am", "key": "token"}}}}


@pytest.fixture
def alertmanager(receiver: Receiver) -> Iterator[LocalAlertmanager]:
    with LocalAlertmanager(receiver.url) as am:
        yield am


def _groups(receiver: Receiver, namespace: str, status: str) -> list[dict[str, Any]]:
    return [b for b in receiver.bodies
            if b.get("groupLabels", {}).get("namespace") == namespace
            and b.get("status") == status]  # fmt: skip


def test_an_incident_fires_groups_and_resolves_in_alertmanager(
    the_lab: Lab, alertmanager: LocalAlertmanager, receiver: Receiver
) -> None:
    flags = (f"--alertmanager-url={alertmanager.url}",)
    with fresh_namespace(the_lab, "am") as ns:
        the_lab.cluster.kubectl("create", "secret", "generic", "am", "-n", ns,
                                f"--from-literal=token={TOKEN}")  # fmt: skip
        with venue_outside_session(the_lab, ns, **FAST, **SINK) as venue, OperatorProcess(
            the_lab.cluster.kubeconfig, the_lab.prometheus.url, namespaces=("am-*",),
            extra_args=flags,
        ) as op:  # fmt: skip
            _incident_alerted_and_resolved(the_lab, alertmanager, receiver, venue, op)


def _incident_alerted_and_resolved(
    the_lab: Lab, alertmanager: LocalAlertmanager, receiver: Receiver, venue: Venue,
    op: OperatorProcess,
) -> None:  # fmt: skip
    ns = venue.namespace
    # A namespace user naming another Alertmanager (here: the cloud metadata address).
    elsewhere = {"notification": {"alertmanager": {"url": "http://169.254.169.254"}}}
    the_lab.cluster.kubectl("apply", "-n", ns, "-f", "-",
                            input=venue_manifest("elsewhere", venue.port, **elsewhere))  # fmt: skip
    venue.wait_status("known-good template", lambda s: bool(s.get("healthyTemplates")))
    assert alertmanager.alerts(namespace=ns) == [], "no incident, no alert"

    set_image(the_lab, ns, BAD_IMAGE)
    wait_until("a P1/P2 alert in Alertmanager", lambda: any(
        a["labels"]["severity"] in ("P1", "P2") for a in alertmanager.alerts(namespace=ns)),
        60, interval=0.25)  # fmt: skip
    (alert,) = alertmanager.alerts(namespace=ns)  # the P3 it started as was ended, not left
    incident = venue.status()["incident"]
    labels = alert["labels"]
    assert labels["alertname"] == "VenueServiceIncident"
    assert labels["venueservice"] == "venue-service"
    assert labels["runbook_section"]
    assert alert["annotations"]["incident_id"] == incident["id"]
    assert "error_rate" in alert["annotations"]["description"]

    wait_until("a firing group notification", lambda: bool(_groups(receiver, ns, "firing")),
               30, interval=0.25)  # fmt: skip
    group = _groups(receiver, ns, "firing")[0]
    assert group["groupLabels"] == {"namespace": ns, "venueservice": "venue-service"}

    venue.wait_event("RolledBack", timeout=60)
    venue.wait_health("Healthy", "None")
    wait_until("the resolved group notification", lambda: bool(_groups(receiver, ns,
               "resolved")), 30, interval=0.25)  # fmt: skip
    resolved = _groups(receiver, ns, "resolved")[-1]
    assert all(a["status"] == "resolved" for a in resolved["alerts"])
    assert {a["annotations"]["incident_id"] for a in resolved["alerts"]} == {incident["id"]}
    assert alertmanager.alerts(namespace=ns) == [], "no active alert after recovery"

    # The bearer token is in the Secret only: not in status, Events or the operator's log.
    events = the_lab.cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    assert TOKEN not in json.dumps(venue.status()) + events + op.log(2000)
    assert not venue.events("AlertNotDelivered")
    (delivered,) = [c for c in venue.status()["conditions"] if c["type"] == "AlertsDelivered"]
    assert delivered["status"] == "True"

    refused = Venue(the_lab, venue.simulator, ns, "elsewhere", venue.port, venue.sim_name)
    event = refused.wait_event("TargetRefused")
    assert "spec.notification.alertmanager.url refused" in event["message"]
    (condition,) = [c for c in refused.status()["conditions"] if c["type"] == "AlertsDelivered"]
    assert condition["status"] == "False" and condition["reason"] == "TargetRefused"
