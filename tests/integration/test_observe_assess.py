"""Observe -> assess on the real lab: operator process, real Prometheus (1 s scrape), the
simulator over HTTP. Each fault moves status to the expected health and severity with
the expected Event, and recovers when the fault is removed."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from tests.harness import Venue, venue_rows
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab

DESCRIBE_LINES = 80  # kubectl describe of a healthy VenueService: one screen

FAULTS = [
    # (id, faults, check that breaches, expected health, expected severity)
    ("error-rate", {"error_ratio": 0.12}, "error_rate", "Degraded", "P2"),
    ("latency", {"added_latency_ms": 2500}, "p99_latency", "Degraded", "P2"),
    ("database-down", {"database_down": True}, "database", "Down", "P1"),
    ("redis-down", {"redis_down": True}, "redis", "Degraded", "P2"),
    ("pool-saturation", {"pool_saturation": True}, "pool_utilisation", "Degraded", "P2"),
    ("memory-pressure", {"memory_pressure": True}, "memory", "Degraded", "P2"),
    ("429-surge", {"rate_limit_tenant": "tenant-b"}, "rate_limited", "Degraded", "P2"),
    ("not-starting", {"not_starting": True}, "health", "Down", "P1"),
    ("migrations-pending", {"migrations_pending": True}, "migrations", "Down", "P1"),
    ("slow-health", {"slow_health": True}, "health", "Down", "P1"),
    ("malformed-health", {"malformed_health": True}, "health", "Down", "P1"),
]


def test_every_fault_is_detected_and_recovers(make_venue: Callable[..., Venue]) -> None:
    """Each fault on a venue of its own, all at once (the operator evaluates each on its own
    loop: one fault's detection never waits for another's)."""
    venues = {case: make_venue(case, wait=False) for case, *_ in FAULTS}
    for venue in venues.values():
        venue.wait_scraped()
        venue.wait_health("Healthy", "None")

    injected = time.monotonic()
    for case, faults, *_ in FAULTS:
        venues[case].inject(**faults)
    for case, _, check, health, severity in FAULTS:
        venue = venues[case]
        venue.wait_health(health, severity)
        assert venue.check(check)["level"] == "critical", case
        breached = venue.wait_event("ThresholdBreached")
        assert breached["type"] == "Warning", case
        assert any(check in e["message"] for e in venue.events("ThresholdBreached")), case
        print(f"\n{case}: fault -> {health}/{severity} within {time.monotonic() - injected:.1f}s")

    for venue in venues.values():
        venue.heal()
    for case, venue in venues.items():
        venue.wait_health("Healthy", "None")
        venue.wait_event("Recovered")
        conditions = {c["type"]: c["status"] for c in venue.status()["conditions"]}
        assert conditions["Healthy"] == "True", case
        assert conditions["MetricsAvailable"] == "True", case


def test_a_two_cycle_blip_does_not_breach(make_venue: Callable[..., Venue]) -> None:
    venue = make_venue(
        "blippy", probe={"interval": "1s", "timeout": "500ms"},
        confirmation={"breaches": 4, "recoveries": 2},
    )  # fmt: skip
    venue.wait_health("Healthy", "None")
    venue.inject(malformed_health=True)
    # Seen, but not confirmed: the health check is pending critical.
    venue.wait_status("health pending critical",
                      lambda s: any(c["name"] == "health" and c.get("pending") == "critical"
                                    for c in s.get("checks", [])), timeout=10)  # fmt: skip
    venue.heal()
    venue.wait_status("blip forgotten",
                      lambda s: all(c.get("pendingCount", 0) == 0 for c in s.get("checks", [])
                                    if c["name"] == "health"), timeout=10)  # fmt: skip
    assert venue.status()["health"] == "Healthy"
    assert venue.events("ThresholdBreached") == []


def test_prometheus_stopped_means_metrics_unavailable_and_no_breach(
    the_lab: Lab, make_venue: Callable[..., Venue]
) -> None:
    venue = make_venue("blind")
    venue.wait_health("Healthy", "None")
    the_lab.prometheus.stop()
    try:
        venue.wait_status(
            "MetricsAvailable=False",
            lambda s: any(c["type"] == "MetricsAvailable" and c["status"] == "False"
                          for c in s.get("conditions", [])),
        )  # fmt: skip
        venue.wait_event("MetricsUnavailable")
        status = venue.status()
        assert status["health"] == "Unknown"
        assert not [c for c in status.get("checks", []) if c["level"] in ("warning", "critical")]
        assert venue.events("ThresholdBreached") == []
    finally:
        the_lab.prometheus.start()
    venue.wait_health("Healthy", "None")


def test_kubectl_get_shows_health_and_severity(
    the_lab: Lab, make_venue: Callable[..., Venue]
) -> None:
    venue = make_venue("shown")
    venue.wait_health("Healthy", "None")
    row = venue_rows(the_lab, venue.namespace)["shown"]
    shown = ("HEALTH", "SEVERITY", "READY", "REVISION", "LAST ACTION", "REFUSED")
    assert [row[c] for c in shown] == ["Healthy", "", "2/2", "1", "", ""], row  # blank: healthy
    describe = the_lab.cluster.kubectl("describe", "venueservice", "shown", "-n", venue.namespace)
    assert len(describe.stdout.splitlines()) <= DESCRIBE_LINES, describe.stdout  # spec too
    status = describe.stdout[
        describe.stdout.index("\nStatus:") : describe.stdout.index("\nEvents:")
    ]
    assert "  Ok Checks:\n    health\n" in status and "  Checks:" not in status  # by name only
    for empty in ("Breach:", "Pending Count:", "History:", "Severity:"):
        assert empty not in status, empty
    venue.inject(error_ratio=0.12)
    venue.wait_health("Degraded", "P2")
    degraded = the_lab.cluster.kubectl("describe", "venueservice", "shown", "-n", venue.namespace)
    checks = degraded.stdout[
        degraded.stdout.index("  Checks:") : degraded.stdout.index("  Conditions:")
    ]
    assert "Name:      error_rate" in checks and "Value:" in checks and "Warning:   1" in checks
    row = venue_rows(the_lab, venue.namespace)["shown"]
    assert [row[c] for c in shown[:4]] == ["Degraded", "P2", "2/2", "1"], row
    wide = venue_rows(the_lab, venue.namespace, "-o", "wide")["shown"]
    assert (wide["DEPLOYMENT"], wide["MODE"]) == ("shown", "Off"), wide
    assert "error_rate" in wide["MESSAGE"] and "[runbook: Monitoring & Alerts]" in wide["MESSAGE"]


READ_ONLY_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: venue-reader}
rules:
- apiGroups: [ops.tickettoken.io]
  resources: [venueservices]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments, replicasets]
  verbs: [get, list]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: venue-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: venue-reader}
subjects: [{kind: ServiceAccount, name: reader}]
"""


def test_check_command_prints_the_assessment_with_read_only_access(
    the_lab: Lab, make_venue: Callable[..., Venue]
) -> None:
    """`check` runs as an identity that may only read: any write would fail it."""
    venue = make_venue("checked")
    venue.wait_health("Healthy", "None")
    venue.inject(added_latency_ms=2500)
    venue.wait_health("Degraded", "P2")
    kubectl = the_lab.cluster.kubectl
    kubectl("create", "serviceaccount", "reader", "-n", venue.namespace)
    kubectl("apply", "-n", venue.namespace, "-f", "-", input=READ_ONLY_RBAC)
    env = {
        **the_lab.cluster.env(),
        "KUBECONFIG": str(the_lab.cluster.kubeconfig_for("reader", venue.namespace)),
    }
    result = subprocess.run(
        [sys.executable, "-m", "venue_operator.cli", "check", "checked", "-n", venue.namespace,
         f"--prometheus-url={the_lab.prometheus.url}", "--allow-service-cidr=127.0.0.0/8"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{venue.namespace}/checked: Degraded (P2)"), result.stdout
    assert lines[1].split()[:4] == ["CHECK", "OBSERVED", "CONFIRMED", "VALUE"]
    latency = next(line.split() for line in lines if line.startswith("p99_latency"))
    assert latency[1:3] == ["critical", "critical"] and latency[3].endswith("ms")
    pods = next(line.split() for line in lines if line.startswith("pods"))
    assert pods[1:4] == ["ok", "ok", "2"]


def test_operator_exposes_metrics_and_liveness(
    operator: OperatorProcess, make_venue: Callable[..., Venue]
) -> None:
    """A VenueService of its own: counted once evaluated, whichever test ran before."""
    venue = make_venue("counted", wait=False)
    labels = f'name="{venue.name}",namespace="{venue.namespace}"'  # sorted, as exposed
    counted = f"venue_operator_evaluations_total{{{labels}}}"

    def evaluations() -> float:
        lines = httpx.get(operator.metrics_url, timeout=5).text.splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(counted))

    wait_until(f"{venue.name} evaluated", lambda: evaluations() > 0, 60, interval=0.5)
    assert "venue_operator_prometheus_queries_total" in httpx.get(operator.metrics_url).text
    live = httpx.get(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5)
    assert live.status_code == 200
