"""Decisions and incident bookkeeping an on-call engineer can trust (#10), on the real lab:
one incident across restarts, one page per escalation, nothing silent, one owner per
Deployment, and words that say what is true. (A missing permission: test_permissions.py.)"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from tests.harness import (
    BAD_IMAGE,
    BAKE,
    FAST,
    NOTIFY,
    Receiver,
    Venue,
    deployment,
    deployment_manifest,
    evaluations,
    fresh_namespace,
    history,
    image_of,
    set_image,
    venue_manifest,
    venue_outside_session,
    venue_rows,
    webhook_secret,
)
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import wait_until
from venue_lab.session import Lab
from venue_operator.kube.status_store import read_back


def count(venue: Venue, reason: str) -> int:
    return sum(e.get("count", 1) for e in venue.events(reason))


def more_evaluations(operator: OperatorProcess, venue: Venue, n: int, timeout: float = 30) -> None:
    seen = evaluations(operator, venue)
    wait_until(f"{n} more evaluations", lambda: evaluations(operator, venue) >= seen + n, timeout)


@contextlib.contextmanager
def deny(lab: Lab, name: str, namespace: str, resources: list[str], group: str,
         expression: str, message: str) -> Iterator[None]:  # fmt: skip
    """A ValidatingAdmissionPolicy refusing (403) UPDATEs in `namespace` for which `expression`
    is false: a real API server saying no to a write, for as long as the block runs."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [group], "apiVersions": ["*"], "operations": ["UPDATE"],
                "resources": resources}]},
            "validations": [{"expression": expression, "message": message,
                             "reason": "Forbidden"}],
        },
    }  # fmt: skip
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"], "matchResources": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}},
    }  # fmt: skip
    kubectl = lab.cluster.kubectl
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    try:
        yield
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name,
                "--ignore-not-found")  # fmt: skip


def wait_denying(lab: Lab, namespace: str, probe: Callable[[], Any]) -> None:
    """Policies take effect asynchronously: wait until a write like the operator's is refused
    (`probe` is a server-side dry run: it goes through admission and changes nothing)."""

    def refused() -> bool:
        try:
            probe()
        except Exception as exc:  # LabError from kubectl, carrying its stderr
            return "denied" in str(exc) or "forbidden" in str(exc).lower()
        return False

    wait_until("the admission policy to refuse", refused, 30, interval=0.5)


# --- 1. one incident across restarts, one page per escalation --------------------------


def test_a_restart_mid_incident_keeps_the_incident_and_pages_once(
    the_lab: Lab, receiver: Receiver
) -> None:
    with fresh_namespace(the_lab, "k") as ns, venue_outside_session(
        the_lab, ns, **FAST, **NOTIFY,
    ) as venue, OperatorProcess(the_lab.cluster.kubeconfig, the_lab.prometheus.url,
                               namespaces=("k-*",)) as op:  # fmt: skip
        webhook_secret(the_lab, ns, receiver.url)
        venue.wait_status("known-good", lambda s: bool(s.get("healthyTemplates")), 60)
        # Incident 1: escalated (no rollout, capacity or dependency cause), then resolved.
        venue.inject(error_ratio=0.3)
        venue.wait_event("Escalated", timeout=60)
        venue.heal()
        venue.wait_status(
            "incident 1 resolved", lambda s: bool((s.get("incident") or {}).get("resolvedAt")), 60
        )
        first = venue.status()["incident"]["id"]
        # Incident 2, open: it must not carry incident 1's resolvedAt.
        venue.inject(error_ratio=0.3)
        venue.wait_status("incident 2 escalated", lambda s: (s.get("incident") or {}).get(
            "id") != first and bool((s.get("incident") or {}).get("escalated")), 60)  # fmt: skip
        second = venue.status()["incident"]
        assert "resolvedAt" not in second, second
        venue.wait_status("every page recorded so far delivered", lambda s: all(
            p["state"] == "Delivered" for p in read_back(s)["outbox"]))  # fmt: skip
        pages = len(receiver.bodies)

        op.kill()  # SIGKILL mid-incident...
        op.start()
        more_evaluations(op, venue, 5)
        op.stop()  # ...and a graceful restart
        op.start()
        more_evaluations(op, venue, 5)

        after = venue.status()["incident"]
        assert after["id"] == second["id"] and "resolvedAt" not in after
        assert after["timeline"][: len(second["timeline"])] == second["timeline"]
        assert len(receiver.bodies) == pages, receiver.bodies[pages:]
        escalations = [e for e in venue.events("Escalated")]
        assert sum(e.get("count", 1) for e in escalations) == 2  # one per incident


# --- 2. a metrics gap never calls a broken service healthy -----------------------------


def test_after_a_metrics_gap_a_bad_template_is_not_called_healthy(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST, remediation={"mode": "Off"})
    good = venue.status()["healthyTemplates"]
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_status("error rate confirmed critical: an open incident", lambda s: any(
        c["name"] == "error_rate" and c["level"] == "critical" for c in s["checks"]))  # fmt: skip
    lines_before = len(operator.log(100_000).splitlines())
    the_lab.prometheus.stop()
    try:
        venue.wait_status("health Unknown", lambda s: s.get("health") == "Unknown", 30)
        incident = venue.status()["incident"]["id"]
        more_evaluations(operator, venue, 5)
    finally:
        the_lab.prometheus.start()
    gap_log = operator.log(100_000).splitlines()[lines_before:]
    query_warnings = [line for line in gap_log if "prometheus.query_failed" in line]
    assert len(query_warnings) <= 10, f"{len(query_warnings)} identical warnings"
    # Back: every status seen must keep the service broken, the incident open, the bad
    # template untrusted.
    deadline = time.monotonic() + 15
    seen: set[str] = set()
    while time.monotonic() < deadline:
        status = venue.status()
        seen.add(status.get("health", ""))
        assert status.get("health") != "Healthy", status
        assert status["healthyTemplates"] == good, status["healthyTemplates"]
        assert status["incident"]["id"] == incident and "resolvedAt" not in status["incident"]
        time.sleep(0.25)  # sampling what the operator writes, not waiting for it
    assert "Degraded" in seen, seen


# --- 3. a budget used up is never silent ------------------------------------------------


def test_budget_used_up_escalates_once(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(
        **FAST,
        remediation={"mode": "Auto", "rollback": {"recentRolloutWindow": "1s"},
                     "scale": {"minReplicas": 2, "maxReplicas": 10, "onPoolSaturation": True},
                     "cooldowns": {"scale": "1s"},
                     "maxActionsPerHour": 1, "verifyWindow": "2s"},
    )  # fmt: skip
    venue.inject(pool_saturation=True)
    venue.wait_event("ScaledUp", timeout=60)
    escalated = venue.wait_event("Escalated", timeout=60)
    assert "budget of 1 actions/hour used" in escalated["message"], escalated["message"]
    assert "scale-up held" in escalated["message"]
    more_evaluations(operator, venue, 5)
    assert count(venue, "Escalated") == 1 and count(venue, "ScaledUp") == 1
    (record,) = history(venue, "Escalate")
    assert record["inputs"]["heldBy"] == "budget"


# --- 4. a refused write is escalated at once, naming what was refused ------------------


def test_a_refused_rollback_is_escalated_at_once_and_logged(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    ns = venue.namespace
    # The operator's writes say who made them: refuse a change-cause newly set to ours.
    key, old = "kubernetes.io/change-cause", "oldObject.metadata.annotations"
    ours = f"object.metadata.annotations['{key}']"
    rule = (f"!has(object.metadata.annotations) || !('{key}' in object.metadata.annotations) "
            f"|| !{ours}.startsWith('venue-operator') || (has({old}) && '{key}' in {old} "
            f"&& {old}['{key}'] == {ours})")  # fmt: skip
    attempt = iter(range(1000))
    with deny(the_lab, f"no-rollback-{ns}", ns, ["deployments"], "apps", rule,
              "rollbacks are frozen"):  # fmt: skip
        wait_denying(the_lab, ns, lambda: the_lab.cluster.kubectl(
            "annotate", "deployment", "venue-service", "-n", ns, "--overwrite", "--dry-run=server",
            f"{key}=venue-operator: probe {next(attempt)}"))  # fmt: skip
        set_image(the_lab, ns, BAD_IMAGE)
        failed = venue.wait_event("RemediationFailed", timeout=60)
        escalated = venue.wait_event("Escalated", timeout=10)  # not after the 10 min cooldown
        for text in (failed["message"], escalated["message"]):
            assert "403" in text and "deployments" in text and '"venue-service"' in text, text
        more_evaluations(operator, venue, 3)
        assert count(venue, "Escalated") == 1 and count(venue, "RemediationFailed") == 1
    logged = [json.loads(line) for line in operator.log(100_000).splitlines()
              if '"remediation.failed"' in line and ns in line]  # fmt: skip
    assert logged and "403" in logged[0]["error"]


# --- 6. an action's Events are posted once, however often its status write fails ------


def test_events_of_an_action_are_posted_once_when_its_status_write_fails(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    ns = venue.namespace
    rule = ("!has(object.status) || !has(object.status.history) || !object.status.history"
            ".exists(h, h.action == 'RollBack' && h.result == 'Succeeded')")  # fmt: skip
    probe = yaml.safe_load(venue_manifest("policy-probe", 1, remediation={"mode": "Off"}))
    the_lab.cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(probe))
    succeeded = {"status": {"history": [{
        "at": "2026-01-01T00:00:00Z", "action": "RollBack", "reason": "probe",
        "result": "Succeeded", "correlationId": "probe"}]}}  # fmt: skip
    with deny(the_lab, f"no-status-{ns}", ns, ["venueservices/status"], "ops.tickettoken.io",
              rule, "status frozen"):  # fmt: skip
        wait_denying(the_lab, ns, lambda: the_lab.cluster.kubectl(
            "patch", "venueservice", "policy-probe", "-n", ns, "--subresource=status",
            "--dry-run=server",
            "--type=merge", "-p", json.dumps(succeeded)))  # fmt: skip
        set_image(the_lab, ns, BAD_IMAGE)
        venue.wait_event("RolledBack", timeout=60)
        more_evaluations(operator, venue, 6)  # each cycle retries the refused write
        assert history(venue, "RollBack")[0]["result"] == "InProgress"  # still refused
    venue.wait_status(
        "rollback recorded Succeeded",
        lambda s: any(
            r["action"] == "RollBack" and r["result"] == "Succeeded" for r in s["history"]
        ),
    )
    assert count(venue, "RolledBack") == 1
    on_deployment = json.loads(
        the_lab.cluster.kubectl(
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            "involvedObject.kind=Deployment,reason=RolledBack",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert sum(e.get("count", 1) for e in on_deployment) == 1
    revisions = sorted(int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                       for rs in json.loads(the_lab.cluster.kubectl(
                           "get", "rs", "-n", ns, "-o", "json").stdout)["items"])  # fmt: skip
    assert revisions == [2, 3], "one rollback"


# --- 7. a dependency outage overlapping a bad rollout does not silence the operator ----


def test_after_a_dependency_outage_a_bad_rollout_is_still_rolled_back(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(
        **FAST, remediation={"mode": "Auto", "circuitBreaker": {"echoWindow": "5s"}}
    )
    venue.inject(redis_down=True)
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_event("CircuitOpened", timeout=60)
    venue.heal()
    venue.wait_event("CircuitClosed", timeout=60)
    wait_until("RemediationHeld: the outage's echo", lambda: any(
        "echo window" in e["message"] for e in venue.events("RemediationHeld")), 30)  # fmt: skip
    venue.wait_event("RolledBack", timeout=60)
    assert image_of(deployment(the_lab, venue.namespace)) == "gcr.io/tickettoken/venue-service:v1"
    venue.wait_health("Healthy", "None")
    incident = venue.status()["incident"]
    assert incident["resolvedAt"] and "held" not in incident, incident  # resolved: holds nothing


# --- 8. one owner per Deployment ------------------------------------------------------


def test_a_second_venueservice_on_the_same_deployment_is_refused(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    ns, kubectl = venue.namespace, the_lab.cluster.kubectl
    twin = yaml.safe_load(venue_manifest("venue-service", venue.port, **FAST))
    twin["metadata"]["name"] = "venue-service-twin"  # the same Deployment, a second claim
    twin["spec"]["remediation"] = {"mode": "Auto", "rollback": {"bakeTime": BAKE}}
    kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(twin))
    sibling = Venue(the_lab, venue.simulator, ns, "venue-service-twin", venue.port, venue.sim_name)
    refused = sibling.wait_event("DuplicateTarget", timeout=30)
    assert "already watched by VenueService venue-service" in refused["message"]
    sibling.wait_status("DuplicateTarget condition", lambda s: any(
        c["type"] == "DuplicateTarget" and c["status"] == "True"
        for c in s.get("conditions", [])))  # fmt: skip
    row = venue_rows(the_lab, ns)["venue-service-twin"]  # the reason on its row (#25)
    assert row["REFUSED"] == (
        "Deployment venue-service is already watched by VenueService venue-service"
    ), row
    set_image(the_lab, ns, BAD_IMAGE)
    venue.wait_event("RolledBack", timeout=60)
    venue.wait_health("Healthy", "None")
    more_evaluations(operator, venue, 5)
    assert image_of(deployment(the_lab, ns)) == "gcr.io/tickettoken/venue-service:v1"
    assert count(venue, "RolledBack") == 1 and sibling.events("RolledBack") == []
    assert sibling.status().get("history", []) == []


# --- 9. unknown is confirmed like any level: no flapping at low traffic -----------------


def test_low_traffic_does_not_flap_between_healthy_and_unknown(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(sim_args=("--rate=0.1",), **FAST)
    before, changes = venue.status(), count(venue, "SeverityChanged")  # setup: Unknown -> Healthy
    more_evaluations(operator, venue, 30, timeout=60)
    status = venue.status()
    assert status["health"] == "Healthy", status
    assert count(venue, "SeverityChanged") == changes, venue.events("SeverityChanged")
    assert status["conditions"] == before["conditions"]


# --- 10. words that say what is true ----------------------------------------------------


def test_a_garbage_collected_known_good_revision_is_named(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    ns, kubectl = venue.namespace, the_lab.cluster.kubectl
    kubectl("patch", "deployment", "venue-service", "-n", ns, "--type=merge",
            "-p", '{"spec": {"revisionHistoryLimit": 0}}')  # fmt: skip
    set_image(the_lab, ns, BAD_IMAGE)
    escalated = venue.wait_event("Escalated", timeout=60)
    assert "garbage-collected (revisionHistoryLimit 0)" in escalated["message"], escalated
    assert "no rollout, capacity or dependency cause" not in escalated["message"]


def test_a_venueservice_waiting_for_its_deployment_says_so(
    the_lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    kubectl = the_lab.cluster.kubectl
    kubectl("apply", "-n", namespace, "-f", "-", input=venue_manifest("not-yet", 1))
    venue = Venue(the_lab, None, namespace, "not-yet", 1, "")  # type: ignore[arg-type]
    event = venue.wait_event("WaitingForDeployment", timeout=30)
    assert "not found" in event["message"]
    venue.wait_status("conditions say it", lambda s: any(
        c["type"] == "Healthy" and "waiting for the Deployment" in c["message"]
        for c in s.get("conditions", [])))  # fmt: skip
    assert "all checks within thresholds" not in json.dumps(venue.status())


def test_an_idle_service_earns_a_known_good_template_and_reasons_never_read_equal(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    """No traffic at all: known-good from health and pods alone; then a rollback's reason
    prints a value that reads above its limit. (The two bake side by side.)"""
    idle = following_venue(name="idle-service", sim_args=("--rate=0",), wait=False, **FAST)
    venue = following_venue(wait=False, **FAST)
    for each in (idle, venue):
        each.wait_scraped()
        each.wait_known_good()
    assert idle.status()["healthyTemplates"]
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    event = venue.wait_event("RolledBack", timeout=60)
    for value, limit in re.findall(r"error_rate ([\d.]+)% > ([\d.]+)%", event["message"]):
        assert float(value) > float(limit), event["message"]


# --- 6. a template rolled back from, applied again by any writer, is not rolled back again --


def test_a_bad_template_applied_four_times_is_rolled_back_once_and_its_writer_named(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    """#22 item 3: `kubectl apply` of the bad template four times, as a sync loop without
    Argo CD or Flux labels would: one rollback, one escalation naming the field manager."""
    venue = following_venue(**FAST)
    bad = deployment_manifest("venue-service", image=BAD_IMAGE)
    apply = functools.partial(the_lab.cluster.kubectl, "apply", "-n", venue.namespace, "-f", "-",
                              input=bad)  # fmt: skip
    apply()
    venue.wait_event("RolledBack", timeout=60)
    wait_until("the rollback landed", lambda: image_of(deployment(
        the_lab, venue.namespace)) != BAD_IMAGE, 30)  # fmt: skip
    for _ in range(3):
        apply()
    said = venue.wait_event("TemplateReapplied", timeout=60)
    assert "field manager kubectl-client-side-apply applied pod template" in said["message"]
    assert "not rolling back again" in said["message"]
    more_evaluations(operator, venue, 5)
    assert count(venue, "RolledBack") == 1 and count(venue, "TemplateReapplied") == 1
    assert image_of(deployment(the_lab, venue.namespace)) == BAD_IMAGE  # left for a human
