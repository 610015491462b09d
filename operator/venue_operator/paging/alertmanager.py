"""Alertmanager as a notification sink: each VenueService's open incident as an alert on
`POST /api/v2/alerts`, re-sent while it is open and ended when it resolves (paging/alerts.py says
what to post; this posts it).

Called once per cycle by the loop and never waits: a post runs in the background, one at a
time per VenueService and a few at a time per Alertmanager, each within a total deadline,
reading no response body. A failure is kept and handed back to the loop to report (an Event, once),
and the post is retried; a token or a response never reaches logs, Events or status.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import structlog

from venue_operator.kube import calls
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import AlertmanagerSink, Notification, SecretKeyRef
from venue_operator.model.status import VenueServiceStatus
from venue_operator.paging import alerts
from venue_operator.record import telemetry
from venue_operator.record.transitions import EventSpec
from venue_operator.tenancy.policy import Tenancy, alertmanager_url_refusal

log = structlog.get_logger(__name__)
TIMEOUT_S = 5.0
CONCURRENCY = 4  # posts in flight per Alertmanager: a slow one ties up no more, and no other


class PostFailed(Exception):
    """A post Alertmanager did not accept; the message is one line, safe to show."""


class AlertmanagerSender:
    def __init__(
        self, api: calls.Api, http: httpx.AsyncClient, default_url: str | None,
        tenancy: Tenancy, resend: timedelta = alerts.RESEND, timeout: float = TIMEOUT_S,
    ) -> None:  # fmt: skip
        self.api, self.http, self.default_url, self.tenancy = api, http, default_url, tenancy
        self.resend, self.timeout = resend, timeout
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._sent: dict[str, alerts.Sent] = {}
        self._problems: dict[str, EventSpec] = {}
        self._retry_at: dict[str, datetime] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def update(
        self, namespace: str, name: str, notification: Notification | None,
        status: VenueServiceStatus,
    ) -> EventSpec | None:  # fmt: skip
        """Post what the incident in `status` means for Alertmanager, if anything changed or
        a re-send is due; the problem to report (a refused URL, a failed post), or None."""
        key = f"{namespace}/{name}"
        sink = notification.alertmanager if notification else None
        if sink is None:
            self.forget(key)  # a dropped sink: the last alert expires by its endsAt
            return None
        refusal = alertmanager_url_refusal(sink.url, self.default_url, self.tenancy)
        if refusal is not None:
            return EventSpec("Warning", Reason.TARGET_REFUSED, refusal)
        now = datetime.now(UTC)
        busy = key in self._tasks or self._retry_at.get(key, now) > now
        if not busy:
            current = alerts.firing(namespace, name, status)
            posts = alerts.to_post(self._sent.get(key), current, now, self.resend)
            if posts:
                task = asyncio.create_task(self._post(key, namespace, sink, posts, now))
                self._tasks[key] = task
                task.add_done_callback(lambda _: self._tasks.pop(key, None))
        return self._problems.get(key)

    async def settle(self) -> None:
        """Wait for the posts in flight (each ends within its deadline)."""
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def forget(self, key: str) -> None:
        for state in (self._sent, self._problems, self._retry_at):
            state.pop(key, None)

    async def _post(
        self, key: str, namespace: str, sink: AlertmanagerSink, posts: list[alerts.Alert],
        now: datetime,
    ) -> None:  # fmt: skip
        url = (sink.url or self.default_url or "").rstrip("/") + "/api/v2/alerts"
        try:
            slots = self._slots.setdefault(url, asyncio.Semaphore(CONCURRENCY))
            async with slots, asyncio.timeout(self.timeout):
                headers = await self._auth(namespace, sink.bearer_token_secret_ref)
                body = alerts.body(posts, now, self.resend)
                async with self.http.stream("POST", url, json=body, headers=headers,
                                            timeout=self.timeout) as response:  # fmt: skip
                    if response.status_code != 200:
                        raise PostFailed(f"HTTP {response.status_code}")
        except Exception as exc:  # a failed post must never break the loop
            what = str(exc) if isinstance(exc, PostFailed) else type(exc).__name__
            self._failed(key, what, now)
            return
        telemetry.ALERT_POSTS.labels("sent").inc()
        sent = alerts.after_post(posts, now)
        if sent is None:
            self._sent.pop(key, None)
        else:
            self._sent[key] = sent
        self._problems.pop(key, None)
        self._retry_at.pop(key, None)
        log.info("alertmanager.sent", key=key, alerts=len(posts),
                 firing=sent is not None)  # fmt: skip

    def _failed(self, key: str, what: str, now: datetime) -> None:
        telemetry.ALERT_POSTS.labels("failed").inc()
        message = f"Alertmanager did not take the alert: {what}; retrying"
        self._problems[key] = EventSpec("Warning", Reason.ALERT_NOT_DELIVERED, message)
        self._retry_at[key] = now + self.resend / 4
        log.warning("alertmanager.failed", key=key, error=what)

    async def _auth(self, namespace: str, ref: SecretKeyRef | None) -> dict[str, str]:
        if ref is None:
            return {}
        try:
            token = await calls.secret_value(self.api, namespace, ref)
        except Exception as exc:
            what = f"bearer token Secret {ref.name}/{ref.key} unreadable ({calls.unreadable(exc)})"
            raise PostFailed(what) from None
        return {"Authorization": f"Bearer {token}"}
