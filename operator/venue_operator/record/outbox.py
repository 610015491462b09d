"""What to page and when, pure: the page outbox in status (model/pages.py).

As the on-call tools have it (PagerDuty Events v2): one incident is one dedup key from its
first page to its resolve. A trigger goes out when an incident reaches a paging level (P1,
P2) it was not paged at, at its opening or as it worsens; never as it improves. An
escalation goes with the incident's page: folded into it when both come from one cycle, sent
after it as an update under the same key, or as the incident's first page when there was
none.
When an incident that paged resolves, a resolve goes out under its key.

Each page is recorded (Pending) in status before it is sent, so a crash can repeat a page
(under the same key) but never lose one. The webhook adapter sends what `due` gives and
hands back what became of it: `delivered` on a 2xx only, else `failed`: retried with
exponential backoff and jitter (hashed from the page and attempt, so a fleet of services
whose receiver failed together does not retry together), Abandoned after GIVE_UP_AFTER.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from venue_operator.incident.impact import with_impact_line
from venue_operator.model.pages import OUTBOX_LIMIT, Page, PageAction, PageState
from venue_operator.model.spec import VenueServiceSpec
from venue_operator.model.status import Incident, Severity, VenueServiceStatus
from venue_operator.record import ledger
from venue_operator.record.transitions import EventSpec

PAGING = (Severity.P1, Severity.P2)
RETRY_FIRST = timedelta(seconds=2)
RETRY_CAP = timedelta(minutes=1)
GIVE_UP_AFTER = timedelta(hours=1)
_MERGED_CHARS = 2000


def pages_to_webhook(spec: VenueServiceSpec | None) -> bool:
    """Pages are recorded only for a VenueService that names a webhook."""
    notification = spec.notification if spec is not None else None
    return notification is not None and notification.webhook_secret_ref is not None


def dedup_key(source: str, incident_id: str) -> str:
    return f"{source}/{incident_id}"


def on_severity(
    status: VenueServiceStatus, source: str, event: EventSpec, now: datetime
) -> VenueServiceStatus:
    """A severity change: a trigger when the open incident is at a paging level worse than
    any it was paged at (opened at P2, worsened to P1); nothing as it improves."""
    incident, severity = _open(status), status.severity
    if incident is None or severity not in PAGING:
        return status
    worst = _worst_triggered(incident)
    if worst is not None and worst.rank <= severity.rank:
        return status
    return _record(status, _trigger(status, source, incident, event, now, severity))


def on_escalation(
    status: VenueServiceStatus, source: str, event: EventSpec, key: str, now: datetime
) -> VenueServiceStatus:
    """An escalation (`key`: said once per incident): folded into the incident's page when
    that was recorded in the same cycle, else sent under the incident's key (its first page,
    or an update)."""
    incident = _open(status)
    if incident is None:  # nothing open (e.g. a migration failed): a page of its own
        alone = Incident(id=key, opened_at=now, severity=status.severity or Severity.P3)
        return _add(status, _trigger(status, source, alone, event, now, alone.severity, key))
    marked = ledger.paged(status, f"escalation:{key}")  # said once per incident
    if marked is None:
        return status
    status = marked
    # the incident's page recorded in this same cycle is not sent yet (pages go out after
    # the cycle's status is written); one from an earlier cycle may be on its way already
    waiting = next((p for p in status.outbox if p.incident == incident.id
                    and p.action is PageAction.TRIGGER and p.recorded_at == now
                    and p.attempts == 0), None)  # fmt: skip
    if waiting is not None:
        message = f"{waiting.message}; then {event.reason}: {event.message}"[:_MERGED_CHARS]
        return _replace(status, waiting.model_copy(update={"message": message}))
    severity = status.severity if status.severity not in (None, Severity.NONE) else None
    page = _trigger(status, source, incident, event, now, severity or incident.severity,
                    f"escalation/{key}")  # fmt: skip
    return _record(status, page)


def on_resolved(
    previous: VenueServiceStatus, status: VenueServiceStatus, source: str, now: datetime
) -> VenueServiceStatus:
    """The incident that paged is resolved: a resolve under its key."""
    before, after = previous.incident, status.incident
    if before is None or after is None or before.id != after.id:
        return status
    if before.resolved_at is not None or after.resolved_at is None:
        return status
    if _worst_triggered(after) is None or f"{after.id}/resolve" in _keys(status):
        return status
    page = Page(
        key=f"{after.id}/resolve", dedup_key=dedup_key(source, after.id), incident=after.id,
        action=PageAction.RESOLVE, severity=str(after.severity), reason="Resolved",
        message=f"resolved after {after.time_to_recover or 'recovery'}", recorded_at=now,
    )  # fmt: skip
    return _add(status, page)


def due(status: VenueServiceStatus, now: datetime) -> list[Page]:
    """Pending pages whose time has come, in the order they were recorded; a page waits for
    the pending ones before it under its dedup key (a resolve never overtakes its trigger)."""
    pages, waiting = [], set()
    for page in status.outbox:
        if page.state is not PageState.PENDING:
            continue
        if page.dedup_key not in waiting and (page.next_attempt_at or now) <= now:
            pages.append(page)
        else:
            waiting.add(page.dedup_key)
    return pages


def delivered(status: VenueServiceStatus, key: str, now: datetime) -> VenueServiceStatus:
    page = _find(status, key)
    if page is None or page.state is not PageState.PENDING:
        return status
    update = {"state": PageState.DELIVERED, "delivered_at": now, "attempts": page.attempts + 1,
              "next_attempt_at": None}  # fmt: skip
    return _replace(status, page.model_copy(update=update))


def failed(status: VenueServiceStatus, key: str, error: str, now: datetime) -> VenueServiceStatus:
    """An attempt the receiver did not take (`error`: redacted, one line): the next one after
    the backoff, or none after GIVE_UP_AFTER."""
    page = _find(status, key)
    if page is None or page.state is not PageState.PENDING:
        return status
    attempts = page.attempts + 1
    gone = now - page.recorded_at >= GIVE_UP_AFTER
    update = {
        "attempts": attempts, "last_error": error[:300],
        "state": PageState.ABANDONED if gone else PageState.PENDING,
        "next_attempt_at": None if gone else now + backoff(page.key, attempts),
    }  # fmt: skip
    return _replace(status, page.model_copy(update=update))


def backoff(key: str, attempts: int) -> timedelta:
    """RETRY_FIRST doubled per attempt up to RETRY_CAP, times 0.5-1.0 (the jitter)."""
    ceiling = min(RETRY_CAP, RETRY_FIRST * 2 ** min(attempts - 1, 16))
    digest = hashlib.sha256(f"{key}/{attempts}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    jittered: timedelta = ceiling * (0.5 + fraction / 2)
    return jittered


def failing(status: VenueServiceStatus) -> Page | None:
    """The oldest page whose last attempt failed (still retried, or abandoned), if any."""
    return next((p for p in status.outbox if p.last_error is not None
                 and p.state is not PageState.DELIVERED), None)  # fmt: skip


# --- the outbox ---------------------------------------------------------------------


def _open(status: VenueServiceStatus) -> Incident | None:
    incident = status.incident
    return incident if incident is not None and incident.resolved_at is None else None


def _worst_triggered(incident: Incident) -> Severity | None:
    """The worst level this incident was paged at (its say-once `pages`, e.g. trigger:P2)."""
    levels = [Severity(k.split(":", 1)[1]) for k in incident.pages if k.startswith("trigger:")]
    return min(levels, key=lambda s: s.rank, default=None)


def _trigger(
    status: VenueServiceStatus, source: str, incident: Incident, event: EventSpec,
    now: datetime, severity: Severity, suffix: str | None = None,
) -> Page:  # fmt: skip
    return Page(
        key=f"{incident.id}/{suffix or f'trigger/{severity}'}",
        dedup_key=dedup_key(source, incident.id), incident=incident.id,
        action=PageAction.TRIGGER, severity=str(severity), reason=str(event.reason),
        message=with_impact_line(event.message, status)[:_MERGED_CHARS], recorded_at=now,
    )  # fmt: skip


def _record(status: VenueServiceStatus, page: Page) -> VenueServiceStatus:
    """The page in the outbox, and the open incident's level marked as paged (the ledger's
    say-once list)."""
    if page.key in _keys(status):
        return status
    return _add(ledger.paged(status, f"trigger:{page.severity}") or status, page)


def _keys(status: VenueServiceStatus) -> set[str]:
    return {p.key for p in status.outbox}


def _find(status: VenueServiceStatus, key: str) -> Page | None:
    return next((p for p in status.outbox if p.key == key), None)


def _add(status: VenueServiceStatus, page: Page) -> VenueServiceStatus:
    """`page` at the end; over OUTBOX_LIMIT, the oldest settled pages go first."""
    if page.key in _keys(status):
        return status
    outbox = [*status.outbox, page]
    while len(outbox) > OUTBOX_LIMIT:
        settled = next((p for p in outbox if p.state is not PageState.PENDING), outbox[0])
        outbox.remove(settled)
    return status.model_copy(update={"outbox": outbox})


def _replace(status: VenueServiceStatus, page: Page) -> VenueServiceStatus:
    return status.model_copy(
        update={"outbox": [page if p.key == page.key else p for p in status.outbox]}
    )
