"""#21: the page rules (record/outbox.py), table-driven: open, worsen, improve, escalate,
resolve, restart; and the outbox's delivery bookkeeping (backoff, jitter, giving up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from venue_operator.model.pages import OUTBOX_LIMIT, Page, PageAction, PageState
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import Incident, Severity, VenueServiceStatus
from venue_operator.record import outbox
from venue_operator.record.transitions import EventSpec

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
SOURCE = "shop/venue-service"
CHANGED = EventSpec("Warning", Reason.SEVERITY_CHANGED, "None -> P2 (Healthy -> Degraded)")
ESCALATED = EventSpec("Warning", Reason.ESCALATED, "rollback refused: a human must act")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def open_at(severity: str, *, resolved: bool = False, pages: list[str] | None = None,
            queued: list[Page] | None = None) -> VenueServiceStatus:  # fmt: skip
    incident = Incident(id="inc-1", opened_at=T0, severity=Severity(severity),
                        resolved_at=at(60) if resolved else None, pages=pages or [])  # fmt: skip
    level = Severity.NONE if resolved else Severity(severity)
    return VenueServiceStatus(severity=level, incident=incident, outbox=queued or [])


def through(severities: list[str]) -> VenueServiceStatus:
    """One incident going through `severities`, a severity change each cycle, every page
    delivered at once."""
    status = VenueServiceStatus()
    for n, level in enumerate(severities):
        incident = status.incident or Incident(id="inc-1", opened_at=T0, severity=Severity(level))
        status = status.model_copy(update={"severity": Severity(level), "incident": incident})
        status = outbox.on_severity(status, SOURCE, CHANGED, at(n))
        for page in outbox.due(status, at(n)):
            status = outbox.delivered(status, page.key, at(n))
    return status


@pytest.mark.parametrize(
    ("severities", "triggered"),
    [
        (["P2"], ["P2"]),  # opens at a paging level
        (["P3"], []),  # below the paging levels
        (["P4", "P3", "P2"], ["P2"]),  # reaches one
        (["P2", "P1"], ["P2", "P1"]),  # worsens
        (["P1", "P2"], ["P1"]),  # improves: never a page
        (["P1", "P2", "P1", "P2", "P3"], ["P1"]),  # back to a level it was paged at
        (["P2", "P3", "P2"], ["P2"]),
    ],
)
def test_a_trigger_when_an_incident_reaches_a_level_it_was_not_paged_at(
    severities: list[str], triggered: list[str]
) -> None:
    status = through(severities)
    pages = status.outbox
    assert [p.severity for p in pages] == triggered
    assert {p.action for p in pages} <= {PageAction.TRIGGER}
    assert {p.dedup_key for p in pages} <= {f"{SOURCE}/inc-1"}  # one key per incident


def test_a_restart_pages_nothing_the_stored_incident_was_paged_for() -> None:
    stored = through(["P2"])
    again = outbox.on_severity(stored, SOURCE, CHANGED, at(30))  # the new process's first
    assert again.outbox == stored.outbox


def test_an_escalation_goes_with_the_page_of_the_same_cycle() -> None:
    status = outbox.on_severity(open_at("P2"), SOURCE, CHANGED, T0)
    status = outbox.on_escalation(status, SOURCE, ESCALATED, "failed:rb-1", T0)
    (page,) = status.outbox
    assert page.reason == Reason.SEVERITY_CHANGED and page.state is PageState.PENDING
    assert page.message.endswith(f"; then Escalated: {ESCALATED.message}")


@pytest.mark.parametrize("delivered", [True, False], ids=["delivered", "maybe-on-its-way"])
def test_an_escalation_in_a_later_cycle_is_an_update_under_the_same_key(delivered: bool) -> None:
    status = (
        through(["P2"]) if delivered else outbox.on_severity(open_at("P2"), SOURCE, CHANGED, T0)
    )
    status = outbox.on_escalation(status, SOURCE, ESCALATED, "failed:rb-1", at(5))
    first, update = status.outbox
    assert update.dedup_key == first.dedup_key and update.action is PageAction.TRIGGER
    assert update.reason == Reason.ESCALATED and update.state is PageState.PENDING
    assert ESCALATED.message not in first.message
    # said once: the same escalation again (a repeated cycle) adds nothing
    assert outbox.on_escalation(status, SOURCE, ESCALATED, "failed:rb-1", at(6)) == status


def test_an_escalation_below_the_paging_levels_is_the_incidents_first_page() -> None:
    status = outbox.on_escalation(open_at("P3"), SOURCE, ESCALATED, "budget", T0)
    (page,) = status.outbox
    assert (page.severity, page.reason, page.dedup_key) == ("P3", "Escalated", f"{SOURCE}/inc-1")
    assert status.incident is not None and "trigger:P3" in status.incident.pages
    # the incident worsening to P2 is a level it was not paged at: one more, same key
    worse = status.model_copy(update={"severity": Severity.P2})
    assert len(outbox.on_severity(worse, SOURCE, CHANGED, at(1)).outbox) == 2


def test_an_escalation_with_no_incident_open_pages_under_its_own_key() -> None:
    status = outbox.on_escalation(VenueServiceStatus(), SOURCE, ESCALATED, "mig-1", T0)
    (page,) = status.outbox
    assert page.dedup_key == f"{SOURCE}/mig-1" and page.incident == "mig-1"


@pytest.mark.parametrize(
    ("paged", "resolves"), [(["trigger:P2"], True), ([], False)], ids=["paged", "never-paged"]
)
def test_a_resolve_under_the_incidents_key_when_one_that_paged_is_over(
    paged: list[str], resolves: bool
) -> None:
    before = open_at("P2", pages=paged)
    after = open_at("P2", resolved=True, pages=paged)
    status = outbox.on_resolved(before, after, SOURCE, at(60))
    resolve = [p for p in status.outbox if p.action is PageAction.RESOLVE]
    assert bool(resolve) is resolves
    if resolves:
        assert resolve[0].dedup_key == f"{SOURCE}/inc-1"
        # the next cycle sees it resolved already: no second resolve
        assert outbox.on_resolved(status, status, SOURCE, at(61)) == status


def test_a_failed_attempt_is_retried_later_and_later_then_given_up() -> None:
    status = outbox.on_severity(open_at("P2"), SOURCE, CHANGED, T0)
    (page,) = outbox.due(status, T0)
    waits, now = [], T0
    while True:
        status = outbox.failed(status, page.key, "the receiver answered 500", now)
        (page,) = status.outbox
        if page.state is PageState.ABANDONED:
            break
        assert page.next_attempt_at is not None
        assert outbox.due(status, now) == []  # not before its time
        waits.append(page.next_attempt_at - now)
        now = page.next_attempt_at
        assert outbox.due(status, now) == [page]
    assert now - T0 >= outbox.GIVE_UP_AFTER
    assert waits[0] <= outbox.RETRY_FIRST and max(waits) <= outbox.RETRY_CAP
    assert waits[5] > waits[0]  # it backs off
    assert outbox.failing(status) == page and page.last_error == "the receiver answered 500"
    # given up: never due again, and never marked delivered after
    assert outbox.due(status, now + timedelta(days=1)) == []
    assert outbox.delivered(status, page.key, now) == status


def test_a_resolve_never_overtakes_its_trigger() -> None:
    status = outbox.on_severity(open_at("P2", pages=[]), SOURCE, CHANGED, T0)
    status = outbox.failed(status, "inc-1/trigger/P2", "the receiver answered 500", T0)
    resolved = status.model_copy(update={"incident": status.incident.model_copy(  # type: ignore[union-attr]
        update={"resolved_at": at(30)})})  # fmt: skip
    status = outbox.on_resolved(status, resolved, SOURCE, at(30))
    assert [p.action for p in status.outbox] == [PageAction.TRIGGER, PageAction.RESOLVE]
    assert outbox.due(status, at(1)) == []  # the trigger's retry is not due: nor the resolve
    retry = status.outbox[0].next_attempt_at
    assert retry is not None
    assert [p.action for p in outbox.due(status, retry)] == [PageAction.TRIGGER,
                                                              PageAction.RESOLVE]  # fmt: skip


def test_the_jitter_spreads_services_whose_receiver_failed_together() -> None:
    waits = {outbox.backoff(f"shop-{n}/inc-1/trigger/P2", 3) for n in range(50)}
    ceiling = outbox.RETRY_FIRST * 4
    assert len(waits) > 40 and all(ceiling / 2 <= w <= ceiling for w in waits)


def test_a_page_is_delivered_only_by_its_own_result() -> None:
    status = outbox.on_severity(open_at("P2"), SOURCE, CHANGED, T0)
    assert outbox.delivered(status, "another-key", T0) == status
    (page,) = outbox.delivered(status, "inc-1/trigger/P2", at(1)).outbox
    assert (page.state, page.delivered_at, page.attempts) == (PageState.DELIVERED, at(1), 1)


def test_the_outbox_is_bounded_and_drops_settled_pages_first() -> None:
    status = VenueServiceStatus()  # no incident: each escalation is a page of its own
    for n in range(OUTBOX_LIMIT + 5):
        status = outbox.on_escalation(status, SOURCE, ESCALATED, f"e{n}", at(n))
        if n % 2:
            status = outbox.delivered(status, f"e{n}/e{n}", at(n))
    assert len(status.outbox) == OUTBOX_LIMIT
    pending = [p.key for p in status.outbox if p.state is PageState.PENDING]
    assert pending == [f"e{n}/e{n}" for n in range(0, OUTBOX_LIMIT + 5, 2)]  # all kept


def test_pages_are_recorded_only_for_a_webhook() -> None:
    spec = {"deployment": {"name": "v"}, "service": {"url": "http://v:3002"}}
    assert not outbox.pages_to_webhook(VenueServiceSpec.model_validate(spec))
    hooked = {**spec, "notification": {"webhookSecretRef": {"name": "pager", "key": "url"}}}
    assert outbox.pages_to_webhook(VenueServiceSpec.model_validate(hooked))
