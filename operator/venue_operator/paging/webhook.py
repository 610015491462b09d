"""Paging: P1/P2 and escalations to a webhook whose URL lives in a Secret.

The URL is read at send time and never logged, stored or put in an Event (URLs
carry tokens). Sending runs in the background within a short total deadline, reading no
response body: a slow, failing or hostile receiver never delays remediation.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import structlog

from venue_operator.incident.impact import with_impact_line
from venue_operator.kube import calls
from venue_operator.model.spec import Notification
from venue_operator.model.status import Severity, VenueServiceStatus
from venue_operator.record.transitions import EventSpec
from venue_operator.tenancy.redact import redact

log = structlog.get_logger(__name__)
TIMEOUT_S = 5.0
_PD_SEVERITY = {Severity.P1: "critical", Severity.P2: "error", Severity.P3: "warning"}


def payload(fmt: str, url: str, source: str, status: VenueServiceStatus, event: EventSpec) -> Any:
    """Slack-style `{"text"}` or a PagerDuty Events v2 trigger (routing_key from the URL)."""
    severity = status.severity or Severity.NONE
    event = replace(event, message=with_impact_line(event.message, status))
    summary = f"[{severity}] {source}: {event.reason}: {event.message}"[:1000]
    if fmt == "PagerDuty":
        routing = parse_qs(urlsplit(url).query).get("routing_key", [""])[0]
        incident = status.incident.id if status.incident else source
        return {
            "routing_key": routing,
            "event_action": "trigger",
            "dedup_key": f"{source}/{incident}",
            "payload": {"summary": summary, "source": source,
                        "severity": _PD_SEVERITY.get(severity, "info")},
        }  # fmt: skip
    return {"text": summary}


class Notifier:
    def __init__(self, api: calls.Api, http: httpx.AsyncClient) -> None:
        self.api, self.http = api, http
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self, namespace: str, name: str, notification: Notification | None,
        status: VenueServiceStatus, event: EventSpec,
    ) -> None:  # fmt: skip
        """Fire and forget (the task is kept until done)."""
        if notification is None or notification.webhook_secret_ref is None:
            return  # no webhook (alerts only: paging/alertmanager.py)
        task = asyncio.create_task(self._send(namespace, name, notification, status, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, namespace: str, name: str, notification: Notification,
        status: VenueServiceStatus, event: EventSpec,
    ) -> None:  # fmt: skip
        ref = notification.webhook_secret_ref
        assert ref is not None  # send() checked
        try:
            url = await calls.secret_value(self.api, namespace, ref)
            body = payload(notification.format, url, f"{namespace}/{name}", status, event)
            # the whole post within the deadline (a receiver that drips its answer ends here
            # too), and the answer's body is never read: only its status counts
            async with asyncio.timeout(TIMEOUT_S):
                async with self.http.stream("POST", url, json=body) as response:
                    response.raise_for_status()
            log.info("notify.sent", namespace=namespace, name=name, reason=event.reason)
        except Exception as exc:  # a page that fails must never break the loop
            detail = redact(f"{type(exc).__name__}: {exc}")
            # httpx messages can quote the URL: keep only the error class beyond redaction
            log.warning("notify.failed", namespace=namespace, name=name,
                        error=type(exc).__name__, secret=f"{ref.name}/{ref.key}",
                        detail=detail if "http" not in detail else "")  # fmt: skip
