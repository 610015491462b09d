"""The loop's side of the page outbox (record/outbox.py): pages are recorded with the status
that says why, sent only once that status is written (so a crash repeats a page, never
loses one), and what became of them is written back at the next cycle; a page that keeps
failing is said in the `PagingFailed` condition and once in a Warning Event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from venue_operator.loop.reports import with_condition
from venue_operator.model.pages import Page, PageState
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import Notification, VenueServiceSpec
from venue_operator.model.status import VenueServiceStatus
from venue_operator.paging.webhook import Delivery
from venue_operator.record import outbox
from venue_operator.record.transitions import EventSpec
from venue_operator.remediate.ports import Events

# paging/webhook.py: send pages in the background; what became of the ones sent so far
SendPages = Callable[[Notification | None, list[Page]], None]
PageResults = Callable[[], list[Delivery]]


class PageDesk:
    def __init__(self, source: str, send: SendPages, results: PageResults, events: Events) -> None:
        self.source, self.send, self.results, self.events = source, send, results, events

    def record(
        self, spec: VenueServiceSpec, previous: VenueServiceStatus, status: VenueServiceStatus,
        events: list[EventSpec], now: datetime,
    ) -> VenueServiceStatus:  # fmt: skip
        """The pages this cycle's transitions call for (a paging level reached, an incident
        resolved), in the outbox of the status about to be written."""
        if not outbox.pages_to_webhook(spec):
            return status
        for event in events:
            if event.reason is Reason.SEVERITY_CHANGED:
                status = outbox.on_severity(status, self.source, event, now)
        return outbox.on_resolved(previous, status, self.source, now)

    async def settle(
        self, spec: VenueServiceSpec, status: VenueServiceStatus, previous: VenueServiceStatus,
        now: datetime,
    ) -> VenueServiceStatus:  # fmt: skip
        """What became of the pages sent, into status; the `PagingFailed` condition."""
        for result in self.results():
            if result.error is None:
                status = outbox.delivered(status, result.key, now)
                continue
            status = outbox.failed(status, result.key, result.error, now)
            page = next((p for p in status.outbox if p.key == result.key), None)
            if page is not None and (page.attempts == 1 or page.state is PageState.ABANDONED):
                await self.events.post_once(None, self._failure_event(page, now),
                                            f"{page.key}/{page.state}")  # fmt: skip
        if not outbox.pages_to_webhook(spec) and not status.outbox:
            return status
        failing = outbox.failing(status)
        if failing is None:
            return with_condition(status, previous, "PagingFailed", "False", "Delivered",
                                  "the webhook took every page sent")  # fmt: skip
        reason = "GivenUp" if failing.state is PageState.ABANDONED else "Retrying"
        return with_condition(status, previous, "PagingFailed", "True", reason,
                              self._failure_event(failing, now).message)  # fmt: skip

    def send_due(
        self, spec: VenueServiceSpec | None, written: VenueServiceStatus | None, now: datetime
    ) -> None:
        """Send the pending pages of the status as written (never of one not yet written)."""
        if written is None:
            return
        due = outbox.due(written, now)
        if due:
            self.send(spec.notification if spec else None, due)

    @staticmethod
    def _failure_event(page: Page, now: datetime) -> EventSpec:
        what = f"page {page.reason} ({page.action}, incident {page.incident})"
        if page.state is PageState.ABANDONED:
            text = (f"{what} given up after {page.attempts} attempts over "
                    f"{outbox.GIVE_UP_AFTER}: {page.last_error}")  # fmt: skip
        else:
            wait = max(0, round(((page.next_attempt_at or now) - now).total_seconds()))
            text = (f"{what} not delivered after {page.attempts} attempt(s): "
                    f"{page.last_error}; next attempt in {wait}s")  # fmt: skip
        return EventSpec("Warning", Reason.PAGING_FAILED, text)
