"""The page outbox in status: each page is written down (pending) before it is sent, and
marked delivered only once the receiver answered 2xx (record/outbox.py says what to page,
paging/webhook.py sends it)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from venue_operator.model.fields import Model

OUTBOX_LIMIT = 20  # pages kept in status: every pending one, then the newest delivered


class PageAction(StrEnum):
    """PagerDuty Events v2's words: open (or add to) the on-call's incident, or close it."""

    TRIGGER = "trigger"
    RESOLVE = "resolve"


class PageState(StrEnum):
    PENDING = "Pending"
    DELIVERED = "Delivered"
    ABANDONED = "Abandoned"  # still refused after record/outbox.py's GIVE_UP_AFTER


class Page(Model):
    """One page to the webhook: its intent first, then what became of it."""

    key: str = Field(max_length=200, description="Unique in the outbox, e.g. inc-1/trigger/P1.")
    dedup_key: str = Field(
        max_length=300, description="The same for every page of one incident (namespace/name/id)."
    )
    incident: str = Field(max_length=100)
    action: PageAction
    severity: str = Field(max_length=8, description="The incident's severity when recorded.")
    reason: str = Field(max_length=64)
    message: str = Field(max_length=2000)
    recorded_at: datetime
    state: PageState = PageState.PENDING
    attempts: int = Field(default=0, ge=0)
    next_attempt_at: datetime | None = Field(
        default=None, description="Not before (backoff after a failed attempt)."
    )
    last_error: str | None = Field(default=None, max_length=300)
    delivered_at: datetime | None = None
