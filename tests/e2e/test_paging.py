"""#21: pages an on-call can rely on, against a strict PagerDuty-Events-v2 receiver
(venue_lab/pagerduty.py): one page per incident and level, never lost when the operator is
SIGKILLed anywhere on the page path (a repeat carries the same dedup key), retried through
a receiver outage, and resolved when the incident is over."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests import harness
from tests.chart import the_chart_alerts_on
from tests.integration.test_chart_install import (  # noqa: F401 - release: a fixture
    alert_fired,
    chart_operator,
    install,
    release,
)
from venue_lab.helm import helm
from venue_lab.operator_process import OperatorProcess
from venue_lab.pagerduty import PagerDutyReceiver
from venue_lab.processes import LabError, wait_until
from venue_lab.session import Lab
from venue_operator.kube.status_store import read_back

PAGERDUTY = {"notification": {"webhookSecretRef": {"name": "pager", "key": "url"},
                              "format": "PagerDuty"}}  # fmt: skip


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyReceiver]:
    with PagerDutyReceiver() as receiver:
        yield receiver


@pytest.fixture
def crash_namespace(the_lab: Lab) -> Iterator[str]:
    """Outside the session operator's t-* namespaces: only this test's operators act here."""
    with harness.fresh_namespace(the_lab, "k") as name:
        yield name


def operator(lab: Lab, *entry: str) -> OperatorProcess:
    wrapped = {"entry": entry} if entry else {}
    return OperatorProcess(lab.cluster.kubeconfig, lab.prometheus.url, namespaces=("k-*",),
                           **wrapped)  # type: ignore[arg-type]  # fmt: skip


def outbox(venue: harness.Venue) -> list[dict[str, object]]:
    pages: list[dict[str, object]] = read_back(venue.status())["outbox"]
    return pages  # whole: a Pending page's state is its default, left out of what is stored


def triggers(receiver: PagerDutyReceiver) -> list[dict[str, object]]:
    return [e for e in receiver.received if e.get("event_action") == "trigger"]


def one_page_then_resolved(
    receiver: PagerDutyReceiver, venue: harness.Venue, timeout: float = 90
) -> None:
    """The incident paged once (repeats only under its dedup key), then resolved there."""

    def resolved() -> bool:
        return bool(receiver.pages) and receiver.pages[0].status == "resolved"

    try:
        wait_until("the PagerDuty alert resolved", resolved, timeout)
    except LabError as exc:
        sent = [(e.get("event_action"), e.get("dedup_key")) for e in receiver.received]
        raise AssertionError(f"{exc}; outbox {outbox(venue)}; received {sent}") from exc
    assert len(receiver.pages) == 1, [a.summary for a in receiver.pages]
    (alert,) = receiver.pages
    assert alert.dedup_key.startswith(f"{venue.namespace}/venue-service/inc-")
    assert {e["dedup_key"] for e in receiver.received} == {alert.dedup_key}
    wait_until("every page marked delivered",
               lambda: all(p["state"] == "Delivered" for p in outbox(venue)), 30)  # fmt: skip


@pytest.mark.parametrize("where", ["before-send", "after-send", "during-retry"])
def test_killed_anywhere_on_the_page_path_the_incident_pages_once_and_resolves(
    the_lab: Lab, crash_namespace: str, pagerduty: PagerDutyReceiver, where: str
) -> None:
    ns = crash_namespace
    harness.webhook_secret(the_lab, ns, pagerduty.url)
    entry = () if where == "during-retry" else ("-m", "tests.fault_pager", where, "30")
    with harness.venue_outside_session(the_lab, ns, **harness.FAST, **PAGERDUTY) as venue:
        with operator(the_lab, *entry) as first:
            venue.wait_status("known-good template", lambda s: bool(s.get("healthyTemplates")))
            if where == "during-retry":
                pagerduty.fail_for(600)
            harness.set_image(the_lab, ns, harness.BAD_IMAGE)
            wait_until("the page recorded", lambda: bool(outbox(venue)), 60)
            if where == "before-send":
                assert pagerduty.received == []  # recorded ahead of the send
            elif where == "after-send":
                wait_until("the page posted", lambda: bool(triggers(pagerduty)), 30)
                assert outbox(venue)[0]["state"] == "Pending"  # its result not written back
            else:
                wait_until("a failed attempt written down",
                           lambda: int(outbox(venue)[0].get("attempts", 0)) >= 1, 30)  # fmt: skip
                pagerduty.fail_for(0)
            first.kill()
        with operator(the_lab):
            venue.wait_health("Healthy", "None", timeout=90)
            one_page_then_resolved(pagerduty, venue)
    if where == "after-send":
        assert len(triggers(pagerduty)) == 2  # the repeat, under the same key: deduplicated


def test_a_receiver_down_for_two_minutes_is_retried_said_and_paged_once_it_is_back(
    the_lab: Lab, crash_namespace: str, pagerduty: PagerDutyReceiver
) -> None:
    ns = crash_namespace
    harness.webhook_secret(the_lab, ns, pagerduty.url)
    with harness.venue_outside_session(the_lab, ns, **harness.FAST, **PAGERDUTY) as venue, \
            operator(the_lab) as running:  # fmt: skip
        venue.wait_status("known-good template", lambda s: bool(s.get("healthyTemplates")))
        pagerduty.fail_for(120)
        harness.set_image(the_lab, ns, harness.BAD_IMAGE)
        venue.wait_status(
            "PagingFailed",
            lambda s: any(
                c["type"] == "PagingFailed" and c["status"] == "True" for c in s["conditions"]
            ),
        )
        (said,) = venue.events("PagingFailed")
        assert (
            "the receiver answered 500" in said["message"] and "next attempt in" in said["message"]
        )
        wait_until("paging_failing on /metrics", lambda: harness.metric(
            running, "venue_operator_paging_failing", ns) == 1.0, 30)  # fmt: skip
        with the_chart_alerts_on(the_lab, running, "VenueOperatorPagingFailed"):
            alert_fired(the_lab, "VenueOperatorPagingFailed", ns)
        venue.wait_health("Healthy", "None", timeout=90)  # remediation never waited on it
        assert pagerduty.pages == []
        # back after its two minutes, then at most one backoff (a minute) and a cycle
        one_page_then_resolved(pagerduty, venue, timeout=120 + 60 + 15)
        attempts = len(pagerduty.received)
        assert 6 <= attempts <= 20, attempts  # backed off: 2 s doubling to 60 s, not every cycle
        venue.wait_status(
            "PagingFailed cleared",
            lambda s: any(
                c["type"] == "PagingFailed" and c["status"] == "False" for c in s["conditions"]
            ),
        )
        assert harness.metric(running, "venue_operator_paging_failing", ns) == 0.0


def test_a_database_outage_pages_once_when_it_opens_and_resolves_once(
    the_lab: Lab, namespace: str, pagerduty: PagerDutyReceiver,
    following_venue: Callable[..., harness.Venue],
) -> None:  # fmt: skip
    """Down (P1), then Degraded (P2) as the database comes back, then Healthy: the P1 page,
    nothing as it improves, one resolve."""
    harness.webhook_secret(the_lab, namespace, pagerduty.url)
    venue = following_venue(**harness.FAST, **PAGERDUTY)
    venue.inject(database_down=True)
    venue.wait_event("CircuitOpened", timeout=60)
    venue.heal()
    venue.wait_event("CircuitClosed", timeout=60)
    venue.wait_health("Healthy", "None", timeout=90)
    one_page_then_resolved(pagerduty, venue)
    assert pagerduty.pages[0].severity == "critical"
    assert len(triggers(pagerduty)) == 1


def test_a_helm_installed_operator_pages_through_the_secret_the_chart_lets_it_read(
    the_lab: Lab,
    release: tuple[str, str],  # noqa: F811
    pagerduty: PagerDutyReceiver,
) -> None:
    """The user's path: `helm install` with `secretReaders` for the namespace that pages; the
    operator as the chart configured it (its ServiceAccount, its args) pages a bad rollout
    once and resolves it. It reads that Secret only; `helm uninstall` takes the grant away."""
    name, namespace = release
    lab, kubectl = the_lab, the_lab.cluster.kubectl

    def may_get(ns: str, secret: str) -> bool:
        asked = kubectl("auth", "can-i", "get", f"secrets/{secret}", "-n", ns,
                        f"--as=system:serviceaccount:{namespace}:{name}", check=False)  # fmt: skip
        return asked.stdout.strip() == "yes"

    with harness.fresh_namespace(lab, "c") as ns:
        install(lab, name, namespace, f"secretReaders[0].namespace={ns}",
                "secretReaders[0].secrets={pager}")  # fmt: skip
        assert may_get(ns, "pager") and not may_get(ns, "another")
        assert not may_get("default", "pager")
        harness.webhook_secret(lab, ns, pagerduty.url)
        with harness.venue_outside_session(lab, ns, **harness.FAST, **PAGERDUTY) as venue, \
                chart_operator(lab, name, namespace):  # fmt: skip
            venue.wait_status("known-good template", lambda s: bool(s.get("healthyTemplates")))
            harness.set_image(lab, ns, harness.BAD_IMAGE)
            venue.wait_event("RolledBack", timeout=60)
            venue.wait_health("Healthy", "None", timeout=90)
            one_page_then_resolved(pagerduty, venue)
        assert not venue.events("PagingFailed")
        helm("uninstall", name, "--namespace", "default", "--wait", "--timeout=60s",
             cluster=lab.cluster)  # fmt: skip
        assert not may_get(ns, "pager")
