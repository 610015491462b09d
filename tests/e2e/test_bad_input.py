"""Bad input: clear status and Events, no crash, no action, no secret leaked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from tests.e2e.test_remediation import FAST, history
from tests.harness import Venue, venue_manifest
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import free_port
from venue_lab.session import Lab


def check_is(name: str, level: str, reason: str = "") -> Callable[[dict[str, Any]], bool]:
    return lambda s: any(
        c["name"] == name and c["level"] == level and reason in c.get("reason", "")
        for c in s.get("checks", [])
    )


def test_missing_deployment_is_unknown_and_never_acted_on(
    the_lab: Lab, operator: OperatorProcess, namespace: str, make_venue: Callable[..., Venue]
) -> None:
    venue = make_venue("orphan", remediation={"mode": "Auto"})
    the_lab.cluster.kubectl("delete", "deployment", "orphan", "-n", namespace)
    venue.wait_status("pods unknown", check_is("pods", "unknown", "Deployment not found"))
    venue.inject(error_ratio=0.5)
    venue.wait_status("error rate confirmed critical", check_is("error_rate", "critical"))
    status = venue.status()
    assert status["health"] == "Degraded"
    assert [r for r in status.get("history", []) if r["result"] == "Succeeded"] == [] or all(
        r["action"] == "Escalate" for r in status.get("history", [])
    )
    assert "Traceback" not in operator.log()


def test_invalid_promql_override_is_unknown_with_the_reason(
    make_venue: Callable[..., Venue],
) -> None:
    broken = {"rateWindow": "5s", "queries": {"p99Latency": "histogram_quantile(("}}
    venue = make_venue("badquery", prometheus=broken)
    p99_unknown = check_is("p99_latency", "unknown", "query failed")
    errors_ok = check_is("error_rate", "ok")
    venue.wait_status("p99 unknown, the rest measured", lambda s: p99_unknown(s) and errors_ok(s))
    status = venue.status()
    others = [c for c in status["checks"] if c["name"] == "error_rate"]
    assert others[0]["level"] == "ok", "one bad override does not blind the other checks"


def test_missing_cronjob_fails_the_migration_clearly(
    following_venue: Callable[..., Venue],
) -> None:
    venue = following_venue(**FAST)
    venue.inject(migrations_pending=True)
    failed = venue.wait_event("RemediationFailed", timeout=60)
    assert "CronJob venue-migrate not found" in failed["message"]
    attempts = [r for r in history(venue, "RunMigration") if r["result"] != "Suppressed"]
    assert [r["result"] for r in attempts] == ["Failed"], "tried once, then held by the cooldown"


def test_prometheus_credentials_never_leak(
    the_lab: Lab, operator: OperatorProcess, namespace: str, simulator: Any,
) -> None:  # fmt: skip
    secret = "hunter2-prom-password"
    port = simulator.add_service(f"{namespace}-creds")
    spec = yaml.safe_load(venue_manifest("creds", port))["spec"]
    spec["prometheus"]["url"] = f"http://admin:{secret}@127.0.0.1:{free_port()}"
    manifest = {"apiVersion": "ops.tickettoken.io/v1alpha1", "kind": "VenueService",
                "metadata": {"name": "creds"}, "spec": spec}  # fmt: skip
    the_lab.cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    venue = Venue(the_lab, simulator, namespace, "creds", port, f"{namespace}-creds")
    venue.wait_event("MetricsUnavailable", timeout=60)
    everything = json.dumps(venue.status()) + json.dumps(venue.events()) + operator.log()
    assert secret not in everything
    assert "admin:" not in json.dumps(venue.status())
