"""Paging: the outbox's pages (record/outbox.py) to a webhook whose URL lives in a Secret.

The URL is read at send time and never logged, stored or put in an Event (URLs carry
tokens). Sending runs in the background, one VenueService's pages in order and one at a
time, each within a short total deadline, reading no response body: a slow, failing or
hostile receiver never delays remediation.
What became of each page waits in `results` until the loop writes it into status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import structlog

from venue_operator.kube import calls
from venue_operator.model.pages import Page, PageAction
from venue_operator.model.spec import Notification
from venue_operator.record import telemetry
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)
TIMEOUT_S = 5.0
_PD_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning"}


@dataclass(frozen=True)
class Delivery:
    """One attempt: `error` is None when the receiver answered 2xx (redacted, one line)."""

    key: str
    error: str | None = None


def summary(source: str, page: Page) -> str:
    if page.action is PageAction.RESOLVE:
        return f"[resolved] {source}: incident {page.incident} {page.message}"[:1000]
    return f"[{page.severity}] {source}: {page.reason}: {page.message}"[:1000]


def payload(fmt: str, url: str, source: str, page: Page) -> dict[str, Any]:
    """PagerDuty Events v2 (routing_key from the URL), or Slack-style `{"text"}` with the
    incident, its dedup key and trigger/resolve beside it."""
    if fmt == "PagerDuty":
        routing = parse_qs(urlsplit(url).query).get("routing_key", [""])[0]
        body: dict[str, Any] = {"routing_key": routing, "event_action": str(page.action),
                                "dedup_key": page.dedup_key}  # fmt: skip
        if page.action is PageAction.TRIGGER:
            body["payload"] = {"summary": summary(source, page), "source": source,
                               "severity": _PD_SEVERITY.get(page.severity, "info")}  # fmt: skip
        return body
    return {"text": summary(source, page), "incident": page.incident,
            "dedup_key": page.dedup_key, "event_action": str(page.action),
            "severity": page.severity}  # fmt: skip


class Pager:
    def __init__(self, api: calls.Api, http: httpx.AsyncClient) -> None:
        self.api, self.http = api, http
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._results: dict[str, list[Delivery]] = {}

    def send(
        self, namespace: str, name: str, notification: Notification | None, pages: list[Page]
    ) -> None:
        """Send `pages` in order in the background, unless this VenueService's last ones are
        still in flight (they are due again at the next cycle if they were not sent)."""
        key = f"{namespace}/{name}"
        if not pages or key in self._tasks:
            return
        task = asyncio.create_task(self._send(namespace, name, notification, pages))
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    def results(self, namespace: str, name: str) -> list[Delivery]:
        """What became of the pages sent since the last call (taken: said once)."""
        return self._results.pop(f"{namespace}/{name}", [])

    async def settle(self) -> None:
        """Wait for the sends in flight (each ends within its timeout)."""
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _send(
        self, namespace: str, name: str, notification: Notification | None, pages: list[Page]
    ) -> None:
        key = f"{namespace}/{name}"
        for page in pages:
            error = await self._one(namespace, name, notification, page)
            telemetry.PAGES.labels("failed" if error else "delivered").inc()
            # looked up at each result: the loop may have taken the list since the send began
            self._results.setdefault(key, []).append(Delivery(page.key, error))
            if error is not None:
                return  # in order: the later ones wait for this one's retry

    async def _one(
        self, namespace: str, name: str, notification: Notification | None, page: Page
    ) -> str | None:
        ref = notification.webhook_secret_ref if notification else None
        if notification is None or ref is None:
            return "no webhook: spec.notification.webhookSecretRef is not set"
        try:
            url = await calls.secret_value(self.api, namespace, ref)
        except Exception as exc:  # e.g. no Role for it (manifests/optional/webhook-secret-reader)
            detail = f"webhook Secret {ref.name}/{ref.key} unreadable ({calls.unreadable(exc)})"
            log.warning("page.failed", namespace=namespace, name=name, page=page.key,
                        detail=detail)  # fmt: skip
            return detail
        try:
            body = payload(notification.format, url, f"{namespace}/{name}", page)
            # the whole post within the deadline (a receiver that drips its answer ends here
            # too), and the answer's body is never read: only its status counts
            async with asyncio.timeout(TIMEOUT_S):
                async with self.http.stream("POST", url, json=body) as response:
                    response.raise_for_status()
        except Exception as exc:  # a page that fails must never break the loop
            # httpx messages can quote the URL: beyond redaction, only the class if they do
            detail = redact(f"{type(exc).__name__}: {exc}")
            if isinstance(exc, httpx.HTTPStatusError):
                detail = f"the receiver answered {exc.response.status_code}"
            elif "http" in detail:
                detail = type(exc).__name__
            log.warning("page.failed", namespace=namespace, name=name, page=page.key,
                        secret=f"{ref.name}/{ref.key}", detail=detail)  # fmt: skip
            return detail[:300]
        log.info("page.delivered", namespace=namespace, name=name, page=page.key,
                 action=str(page.action))  # fmt: skip
        return None
