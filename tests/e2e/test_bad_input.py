"""Bad input: clear status and Events, no crash, no action, no secret leaked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from tests.harness import FAST, Venue, deployment_manifest, venue_manifest
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import free_port
from venue_lab.session import Lab
from venue_operator.kube.status_store import read_back


def check_is(name: str, level: str, reason: str = "") -> Callable[[dict[str, Any]], bool]:
    return lambda s: any(
        c["name"] == name and c["level"] == level and reason in (c["reason"] or "")
        for c in read_back(s)["checks"]
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
    # refused before it is sent: a tenant query is parsed to confine it to its namespace
    p99_unknown = check_is("p99_latency", "unknown", "override p99Latency refused: query cannot")
    errors_ok = check_is("error_rate", "ok")
    venue.wait_status("p99 unknown, the rest measured", lambda s: p99_unknown(s) and errors_ok(s))
    status = venue.status()
    others = [c for c in read_back(status)["checks"] if c["name"] == "error_rate"]
    assert others[0]["level"] == "ok", "one bad override does not blind the other checks"


def test_missing_cronjob_fails_the_migration_clearly(
    following_venue: Callable[..., Venue],
) -> None:
    venue = following_venue(**FAST)
    venue.inject(migrations_pending=True)
    failed = venue.wait_event("RemediationFailed", timeout=60)
    assert "CronJob venue-migrate not found" in failed["message"]

    def results(status: dict[str, Any]) -> list[str]:
        return [r["result"] for r in status.get("history", [])
                if r["action"] == "RunMigration" and r["result"] != "Suppressed"]  # fmt: skip

    # the Event is posted as the attempt fails; its record lands with the cycle's status write
    venue.wait_status("the failed attempt recorded", lambda s: "InProgress" not in results(s), 30)
    assert results(venue.status()) == ["Failed"], "tried once, then held by the cooldown"


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


def test_names_the_api_server_refuses_change_nothing(the_lab: Lab, namespace: str) -> None:
    """Unicode and over-long names never reach the operator: the API server says why."""
    kubectl = the_lab.cluster.kubectl
    refused = {
        "RFC 1123": venue_manifest("vénue-☃", 1),
        "no more than 253 characters": venue_manifest("v" * 254, 1),
        "spec.deployment.name in body should match": venue_manifest(
            "fine", 1, deployment={"name": "dépl☃"}
        ),
    }
    for why, manifest in refused.items():
        result = kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=False)
        assert result.returncode != 0 and why in result.stderr, result.stderr
    listed = kubectl("get", "venueservices", "-n", namespace, "-o", "name").stdout
    assert listed.strip() == ""


def test_the_longest_name_and_a_unicode_label_are_evaluated(
    the_lab: Lab, operator: OperatorProcess, namespace: str, simulator: Any
) -> None:
    """A 253-character VenueService is evaluated and acted on like any other; a Unicode
    label value travels into PromQL and back into status intact."""
    kubectl = the_lab.cluster.kubectl
    longest = ("venue-" + "x" * 253)[:253]
    port = simulator.add_service(f"{namespace}-long")
    the_lab.prometheus.add_target(f"127.0.0.1:{port}",
                                  {"namespace": namespace, "service": "venue-long"})  # fmt: skip
    kubectl("apply", "-n", namespace, "-f", "-", input=deployment_manifest("venue-long"))
    scale_up = {"mode": "Auto", "scale": {"maxReplicas": 3, "onPoolSaturation": True}}
    kubectl("apply", "-n", namespace, "-f", "-", input=venue_manifest(
        longest, port, deployment={"name": "venue-long"}, remediation=scale_up))  # fmt: skip
    venue = Venue(the_lab, simulator, namespace, longest, port, f"{namespace}-long")
    venue.wait_health("Healthy", "None")
    venue.inject(pool_saturation=True)
    venue.wait_event("ScaledUp", timeout=60)
    replicas = kubectl("get", "deployment", "venue-long", "-n", namespace,
                       "-o", "jsonpath={.spec.replicas}").stdout  # fmt: skip
    assert int(replicas) > 2

    labels = {"namespace": namespace, "service": 'vénue-☃-\\-"q"'}
    # Its own Deployment: a second VenueService on venue-long would be refused as a duplicate.
    kubectl("apply", "-n", namespace, "-f", "-", input=deployment_manifest("venue-unicode"))
    kubectl("apply", "-n", namespace, "-f", "-", input=venue_manifest(
        "unicode-label", port, deployment={"name": "venue-unicode"},
        prometheus={"rateWindow": "5s", "matchLabels": labels}))  # fmt: skip
    unicode = Venue(the_lab, simulator, namespace, "unicode-label", port, f"{namespace}-long")
    unicode.wait_status("metrics unknown, naming the label",
                        check_is("error_rate", "unknown", "vénue-☃"))  # fmt: skip
    assert "Traceback" not in operator.log()
