"""Remediation on the real lab: the operator acts, and the simulated service, following its
Deployment's image, really heals (or stays broken) as a result."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.harness import (
    BAD_IMAGE,
    FAST,
    Venue,
    deployment,
    evaluations,
    get,
    history,
    image_of,
    set_image,
    table,
    venue_rows,
)
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.model.keys import REVISION
from venue_operator.model.status import CHECK_SECTIONS
from venue_operator.record.transitions import CONDITION_CHARS


def test_bad_rollout_is_rolled_back_and_the_service_recovers(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    good_template = venue.status()["healthyTemplates"][0]
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    event = venue.wait_event("RolledBack", timeout=60)
    assert "error_rate" in event["message"] and "2 -> 1" in event["message"]
    d = deployment(the_lab, venue.namespace)
    assert image_of(d) == "gcr.io/tickettoken/venue-service:v1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert "venue-operator" in d["metadata"]["annotations"]["kubernetes.io/change-cause"]
    venue.wait_health("Healthy", "None")
    venue.wait_event("Recovered")
    status = venue.status()
    (rollback,) = history(venue, "RollBack")
    assert rollback["result"] == "Succeeded" and rollback["inputs"]["toTemplate"] == good_template
    assert rollback["inputs"]["fromTemplate"] in status["rolledBackTemplates"]
    assert status["lastAction"]["action"] == "RollBack"
    assert status["incident"]["resolvedAt"]
    # The Deployment got an Event too.
    on_deployment = the_lab.cluster.kubectl(
        "get", "events", "-n", venue.namespace, "--field-selector",
        "involvedObject.kind=Deployment,reason=RolledBack", "-o", "name",
    ).stdout.split()  # fmt: skip
    assert len(on_deployment) == 1


def test_operator_rollback_matches_kubectl_rollout_undo(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    """The same history on a twin Deployment, undone by the real kubectl: same template."""
    venue = following_venue(**FAST)
    kubectl = the_lab.cluster.kubectl
    twin_ns = f"{venue.namespace}-twin"
    kubectl("create", "namespace", twin_ns)
    the_lab.cluster.wait_for_service_account(twin_ns)
    original = deployment(the_lab, venue.namespace)
    twin = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "venue-service", "namespace": twin_ns},
            "spec": original["spec"]}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(twin))
    kubectl("rollout", "status", "-n", twin_ns, "deployment/venue-service", "--timeout=60s")
    set_image(the_lab, twin_ns, BAD_IMAGE)
    kubectl("rollout", "status", "-n", twin_ns, "deployment/venue-service", "--timeout=60s")
    kubectl("rollout", "undo", "-n", twin_ns, "deployment/venue-service")

    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_event("RolledBack", timeout=60)
    ours, theirs = deployment(the_lab, venue.namespace), deployment(the_lab, twin_ns)
    assert ours["spec"]["template"] == theirs["spec"]["template"]
    revision = "deployment.kubernetes.io/revision"
    wait_until("both controllers settled on revision 3",
               lambda: deployment(the_lab, venue.namespace)["metadata"]["annotations"][revision]
               == deployment(the_lab, twin_ns)["metadata"]["annotations"][revision] == "3",
               30)  # fmt: skip
    kubectl("delete", "namespace", twin_ns, "--wait=false")


def test_capacity_saturation_scales_up_to_the_bound_and_stops(
    the_lab: Lab, operator: Any, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(
        **FAST,
        remediation={
            "mode": "Auto",
            "rollback": {"recentRolloutWindow": "1s"},  # no rollout is "recent": capacity
            "scale": {"minReplicas": 2, "maxReplicas": 4, "step": 1, "onPoolSaturation": True},
            "cooldowns": {"scale": "2s"},
            "verifyWindow": "3s",
        },
    )
    venue.inject(pool_saturation=True)
    venue.wait_event("Escalated", timeout=90)
    assert deployment(the_lab, venue.namespace)["spec"]["replicas"] == 4
    scaled = venue.events("ScaledUp")
    assert sum(e.get("count", 1) for e in scaled) == 2
    assert "maxReplicas 4" in venue.events("Escalated")[0]["message"]
    assert [r["inputs"]["toReplicas"] for r in history(venue, "ScaleUp")] == ["3", "4"]
    # ... and stops there: no more scaling, and never a scale-down fight.
    seen = evaluations(operator, venue)
    wait_until("5 more evaluations", lambda: evaluations(operator, venue) >= seen + 5, 30)
    assert deployment(the_lab, venue.namespace)["spec"]["replicas"] == 4
    assert len(history(venue, "ScaleUp")) == 2


def test_database_down_opens_the_breaker_and_does_not_roll_back(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    venue.inject(database_down=True)
    set_image(the_lab, venue.namespace, BAD_IMAGE)  # a bad rollout at the same time
    venue.wait_event("CircuitOpened", timeout=60)
    data = get(the_lab, "configmap", venue.namespace, "venue-service-circuit-breaker")
    assert data["data"]["open"] == "true"
    assert data["metadata"]["annotations"]["ops.tickettoken.io/circuit-set-by"].startswith(
        "venue-operator"
    )
    venue.heal()
    set_image(the_lab, venue.namespace, "gcr.io/tickettoken/venue-service:v1")
    venue.wait_event("CircuitClosed", timeout=60)
    closed = get(the_lab, "configmap", venue.namespace, "venue-service-circuit-breaker")
    assert closed["data"]["open"] == "false"
    assert venue.events("RolledBack") == [] and venue.events("ScaledUp") == []


MIGRATE_CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: venue-migrate}
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  jobTemplate:
    metadata: {labels: {app: venue-migrate}}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: migrate, image: "gcr.io/tickettoken/venue-service:v1",
                        command: [npm, run, migrate]}]
"""


def test_migrations_pending_creates_exactly_one_job(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-n", venue.namespace, "-f", "-", input=MIGRATE_CRONJOB)
    venue.inject(migrations_pending=True)
    venue.wait_event("MigrationStarted", timeout=60)
    venue.wait_event("MigrationSucceeded", timeout=60)  # kwok completes the Job's pod
    jobs = json.loads(kubectl("get", "jobs", "-n", venue.namespace, "-o", "json").stdout)["items"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["npm", "run", "migrate"]
    venue.heal()  # the migration ran: the service starts
    venue.wait_health("Healthy", "None")
    assert (
        len(json.loads(kubectl("get", "jobs", "-n", venue.namespace, "-o", "json").stdout)["items"])
        == 1
    )


def test_dry_run_records_but_writes_no_workload(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST, remediation={"mode": "DryRun"})
    before = deployment(the_lab, venue.namespace)
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    event = venue.wait_event("DryRun", timeout=60)
    assert event["message"].startswith("would RollBack") and "2 -> 1" in event["message"]
    after = deployment(the_lab, venue.namespace)
    assert image_of(after) == BAD_IMAGE
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1  # ours only
    # the Event is posted in the cycle, the history written at its end
    venue.wait_status("the dry run recorded", lambda s: any(
        r.get("action") == "RollBack" for r in s.get("history", [])), 30)  # fmt: skip
    (record,) = history(venue, "RollBack")
    assert record["dryRun"] is True and record["result"] == "DryRun"
    assert venue.events("RolledBack") == []


def test_budget_and_cooldown_stop_a_flapping_service(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(
        **FAST,
        remediation={"mode": "Auto", "rollback": {"recentRolloutWindow": "1s"},
                     "scale": {"minReplicas": 2, "maxReplicas": 10, "onPoolSaturation": True},
                     "maxActionsPerHour": 1, "verifyWindow": "2s"},
    )  # fmt: skip
    venue.inject(pool_saturation=True)
    venue.wait_event("ScaledUp", timeout=60)
    venue.heal()
    venue.wait_health("Healthy", "None")
    venue.inject(pool_saturation=True)  # flaps back
    held = venue.wait_event("RemediationSuppressed", timeout=60)
    assert "budget" in held["message"] or "cooldown" in held["message"]
    assert deployment(the_lab, venue.namespace)["spec"]["replicas"] == 3
    assert len(venue.events("ScaledUp")) == 1


def test_pause_annotation_stops_everything(
    the_lab: Lab, operator: Any, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    the_lab.cluster.kubectl("annotate", "venueservice", venue.name, "-n", venue.namespace,
                            "ops.tickettoken.io/paused=true")  # fmt: skip
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_health("Degraded", "P2")
    seen = evaluations(operator, venue)
    wait_until("5 more evaluations while paused",
               lambda: evaluations(operator, venue) >= seen + 5, 30)  # fmt: skip
    assert image_of(deployment(the_lab, venue.namespace)) == BAD_IMAGE
    assert venue.events("RolledBack") == [] and history(venue, "RollBack") == []


def test_kubectl_describe_shows_the_trail(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_event("RolledBack", timeout=60)
    venue.wait_health("Healthy", "None")
    out = the_lab.cluster.kubectl(
        "describe", "venueservice", venue.name, "-n", venue.namespace
    ).stdout
    status = out[out.index("\nStatus:") : out.index("\nEvents:")]
    assert "Rolled Back Templates:" in status and "Resolved At:" in status
    assert "Section:          Rollback Procedure" in status
    assert "rollback succeeded: error_rate" in status  # the incident timeline
    events = [line.split() for line in out[out.index("\nEvents:") :].splitlines()[3:]]
    reasons = [e[1] for e in events if len(e) > 3 and e[3] == "venue-operator"]
    for reason in ("ThresholdBreached", "RolledBack", "Recovered"):
        assert reason in reasons, out[out.index("\nEvents:") :]
    # 25: a resolved incident holds nothing; condition messages are whole; the cause is
    # read before the action where kubectl sorts by time
    assert "Held:" not in status
    for condition in venue.status()["conditions"]:
        assert whole_words(condition["message"]), condition
    kubectl = the_lab.cluster.kubectl
    by_time = kubectl("get", "events", "-n", venue.namespace, "--sort-by=.lastTimestamp",
                      "-o", "custom-columns=REASON:.reason,KIND:.involvedObject.kind,"
                      "AT:.lastTimestamp,MESSAGE:.message").stdout  # fmt: skip
    rows = [row for row in table(by_time) if row["KIND"] == "VenueService"]
    before = rows[: [row["REASON"] for row in rows].index("RolledBack")]
    # the critical breach's cycle is read before the rollback; not by position: kubectl lists
    # the Events of one second (the cycle before, 1 s earlier, may share it) in no set order
    assert any(r["REASON"] == "ThresholdBreached" and "critical" in r["MESSAGE"]
               for r in before), by_time  # fmt: skip
    assert any(r["REASON"] == "SeverityChanged" and "-> P2" in r["MESSAGE"]
               for r in before), by_time  # fmt: skip
    revision = deployment(the_lab, venue.namespace)["metadata"]["annotations"][REVISION]
    wait_until(f"REVISION {revision} in kubectl get", lambda: venue_rows(
        the_lab, venue.namespace)[venue.name]["REVISION"] == revision, 10)  # fmt: skip


def whole_words(message: str) -> bool:
    """Bounded, and never cut inside a runbook section's name ("Database Connection Fail")."""
    cited = re.findall(r"\[runbook: ([^\]]*)\]?", message)
    sections = set(CHECK_SECTIONS.values())
    return len(message) <= CONDITION_CHARS and all(s in sections for s in cited)
