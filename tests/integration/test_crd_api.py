"""The VenueService CRD on a real API server: defaults, CEL validation, printer columns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.harness import fresh_namespace, get, table
from venue_lab.session import Lab, example
from venue_operator.model.spec import VenueServiceSpec


@pytest.fixture
def namespace(the_lab: Lab) -> Iterator[str]:
    """Not in t-*: no operator of the session watches it, so status is what a test wrote
    (an operator there rewrote a patched status before `kubectl get` read it)."""
    with fresh_namespace(the_lab, "crd") as name:
        yield name


def manifest(spec: dict[str, Any], name: str = "venue-service") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "ops.tickettoken.io/v1alpha1",
            "kind": "VenueService",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def test_crd_is_established(the_lab: Lab) -> None:
    crd = json.loads(
        the_lab.cluster.kubectl(
            "get", "crd", "venueservices.ops.tickettoken.io", "-o", "json"
        ).stdout
    )
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["venuesvc", "vsvc"]


def test_the_api_server_stores_what_was_written_and_the_operator_reads_the_runbook_defaults(
    the_lab: Lab, namespace: str
) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-n", namespace, "-f", str(example("venueservice.yaml")))
    spec = get(the_lab, "venuesvc", namespace, "venue-service")["spec"]
    # Blocks left out stay out (describe and GitOps diffs show the choices made), but for
    # remediation, filled in for its mode...
    assert spec == {
        "deployment": {"name": "venue-service"},
        "remediation": {"mode": "Auto", "maxActionsPerHour": 6, "verifyWindow": "5m"},
    }
    # ...and the operator reads them at the runbook's values.
    read = VenueServiceSpec.model_validate(spec)
    assert (
        read.thresholds.error_rate_percent.warning,
        read.thresholds.error_rate_percent.critical,
    ) == (1, 5)
    assert (read.thresholds.p99_latency_ms.warning, read.thresholds.p99_latency_ms.critical) == (
        500,
        2000,
    )
    assert read.probe.interval.total_seconds() == 15
    assert read.remediation.migration.cron_job_name == "venue-migrate"
    # A block written gets its own defaults from the API server, as the models define them.
    written = {"deployment": {"name": "venue-service"}, "probe": {"interval": "5s"},
               "thresholds": {"p99LatencyMs": {"warning": 300, "critical": 900}}}  # fmt: skip
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest(written))
    spec = get(the_lab, "venuesvc", namespace, "venue-service")["spec"]
    assert spec["probe"] == {"interval": "5s", "timeout": "2s"}
    assert spec["thresholds"]["errorRatePercent"] == {"warning": 1, "critical": 5}
    assert spec["thresholds"]["p99LatencyMs"] == {"warning": 300, "critical": 900}
    assert "rolloutGuard" not in spec and "confirmation" not in spec


INVALID = [
    # (id, spec patch on top of a valid spec, text the API server's message must contain)
    ("error-warning-above-critical",
     {"thresholds": {"errorRatePercent": {"warning": 5, "critical": 1}}},
     "spec.thresholds.errorRatePercent: Invalid value: warning must be below critical"),
    ("latency-warning-equals-critical",
     {"thresholds": {"p99LatencyMs": {"warning": 2000, "critical": 2000}}},
     "spec.thresholds.p99LatencyMs: Invalid value"),
    ("memory-over-100-percent",
     {"thresholds": {"memoryPercent": {"warning": 70, "critical": 150}}},
     "spec.thresholds.memoryPercent.critical"),
    ("min-above-max-replicas",
     {"remediation": {"scale": {"minReplicas": 5, "maxReplicas": 2}}},
     "spec.remediation.scale: Invalid value: minReplicas must not exceed maxReplicas"),
    ("duration-not-a-duration", {"probe": {"interval": "soon"}}, "spec.probe.interval"),
    ("duration-zero", {"remediation": {"cooldowns": {"rollback": "0s"}}},
     "spec.remediation.cooldowns.rollback: Invalid value: \"0s\": must be a positive duration"),
    ("restore-after-not-a-duration", {"remediation": {"scale": {"restoreAfter": "never"}}},
     "spec.remediation.scale.restoreAfter"),
    ("timeout-not-below-interval", {"probe": {"interval": "15s", "timeout": "20s"}},
     "spec.probe: Invalid value: timeout must be shorter than interval"),
    ("url-wrong-scheme", {"service": {"url": "ftp://venue-service:3002"}},
     'spec.service.url: Invalid value: "ftp://venue-service:3002": must be an http:// or https://'),
    ("url-not-a-url", {"prometheus": {"url": "prometheus at port 9090"}}, "spec.prometheus.url"),
    ("unknown-mode", {"remediation": {"mode": "Yolo"}},
     "spec.remediation.mode: Unsupported value: \"Yolo\""),
    ("deployment-missing", {"deployment": None}, "spec.deployment: Required value"),
    ("deployment-bad-name", {"deployment": {"name": "Venue_Service"}}, "spec.deployment.name"),
    ("health-path-relative", {"service": {"healthPath": "health"}}, "spec.service.healthPath"),
    ("negative-budget", {"remediation": {"maxActionsPerHour": -1}},
     "spec.remediation.maxActionsPerHour"),
    ("webhook-url-inline", {"notification": {"url": "https://hooks.example/T0K3N"}},
     "spec.notification"),
    ("notification-without-a-sink", {"notification": {"format": "Slack"}},
     "spec.notification: Invalid value: set webhookSecretRef, alertmanager or both"),
    ("alertmanager-url-wrong-scheme", {"notification": {"alertmanager": {"url": "ftp://am"}}},
     "spec.notification.alertmanager.url"),
    ("label-key-invalid", {"prometheus": {"matchLabels": {"bad-key": "x"}}},
     "spec.prometheus.matchLabels"),
]  # fmt: skip


def valid_spec() -> dict[str, Any]:
    return {"deployment": {"name": "venue-service"}}


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(("case", "patch", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_is_rejected_naming_the_field(
    the_lab: Lab, namespace: str, case: str, patch: dict[str, Any], message: str
) -> None:
    kubectl = the_lab.cluster.kubectl
    result = kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifest(merged(valid_spec(), patch)),
        check=False,
    )
    assert result.returncode != 0, f"{case} was accepted"
    assert message in result.stderr, result.stderr
    # ... and nothing was written.
    listed = kubectl("get", "venueservices", "-n", namespace, "-o", "name").stdout
    assert listed.strip() == ""


def test_valid_spec_is_accepted_as_control(the_lab: Lab, namespace: str) -> None:
    result = the_lab.cluster.kubectl(
        "create", "-n", namespace, "-f", "-", input=manifest(valid_spec())
    )
    assert "created" in result.stdout


def test_restore_after_zero_means_never_and_is_accepted(the_lab: Lab, namespace: str) -> None:
    spec = merged(valid_spec(), {"remediation": {"scale": {"restoreAfter": "0s"}}})
    result = the_lab.cluster.kubectl("create", "-n", namespace, "-f", "-", input=manifest(spec))
    assert "created" in result.stdout
    out = the_lab.cluster.kubectl("get", "venueservice", "venue-service", "-n", namespace,
                                  "-o", "jsonpath={.spec.remediation.scale}").stdout  # fmt: skip
    assert json.loads(out)["restoreAfter"] == "0s"


def test_alertmanager_alone_is_a_notification(the_lab: Lab, namespace: str) -> None:
    spec = {**valid_spec(), "notification": {"alertmanager": {}}}
    result = the_lab.cluster.kubectl("create", "-n", namespace, "-f", "-", input=manifest(spec))
    assert "created" in result.stdout


def test_printer_columns_show_status(the_lab: Lab, namespace: str) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("create", "-n", namespace, "-f", "-", input=manifest(valid_spec()))
    status = {
        "status": {
            "health": "Degraded", "severity": "P2", "ready": "2/3", "revision": 3,
            "lastAction": {
                "at": "2026-11-26T20:00:00Z", "action": "RolledBack", "reason": "test",
                "result": "Succeeded", "correlationId": "c-1",
            },
        }
    }  # fmt: skip
    kubectl(
        "patch", "venueservice", "venue-service", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    out = kubectl("get", "venueservices", "-n", namespace).stdout
    (row,) = table(out)
    assert list(row) == [
        "NAME", "HEALTH", "SEVERITY", "READY", "REVISION", "LAST ACTION", "ACTED", "REFUSED", "AGE",
    ]  # fmt: skip
    assert list(row.values())[:6] == ["venue-service", "Degraded", "P2", "2/3", "3", "RolledBack"]
    assert row["ACTED"].endswith("d") and row["REFUSED"] == "", out  # the action's age: days


def test_status_schema_rejects_an_unknown_health(the_lab: Lab, namespace: str) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("create", "-n", namespace, "-f", "-", input=manifest(valid_spec()))
    result = kubectl(
        "patch", "venueservice", "venue-service", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", '{"status": {"health": "Fine"}}', check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert 'status.health: Unsupported value: "Fine"' in result.stderr
