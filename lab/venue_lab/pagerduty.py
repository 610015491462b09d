"""A PagerDuty-Events-v2-compatible receiver on loopback, strict as that API documents
(developer.pagerduty.com, "Send an Alert Event"): an event is `routing_key`, `event_action`
(trigger, acknowledge, resolve) and `dedup_key`; a trigger needs `payload.summary`,
`payload.source` and `payload.severity` (critical, error, warning, info). A trigger whose
dedup key has an open alert is deduplicated into it (no new page); a resolve closes the
alert; anything malformed gets 400 and changes nothing. Accepted events get 202.

`pages` are the alerts opened (what would wake the on-call); `fail_for(seconds)` makes it
answer 500 to everything for a while, as an outage of the receiver.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from venue_lab.receiver import PostReceiver

ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"  # 32 characters, as PagerDuty's keys
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class Alert:
    dedup_key: str
    summary: str
    severity: str
    status: str = "triggered"  # or "resolved"
    deduplicated: int = 0  # triggers folded into it after the first
    log: list[str] = field(default_factory=list)


def problems(event: Any) -> list[str]:
    """Why PagerDuty would refuse `event` (empty: accepted)."""
    if not isinstance(event, dict):
        return ["the body is not a JSON object"]
    found = []
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        found.append("routing_key must be a 32-character string")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        found.append("event_action must be trigger, acknowledge or resolve")
    key = event.get("dedup_key")
    if action != "trigger" and not isinstance(key, str):
        found.append("dedup_key is required to acknowledge or resolve")
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        found.append("dedup_key must be a string of at most 255 characters")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*found, "payload is required to trigger"]
        if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
            found.append("payload.summary must be 1 to 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            found.append("payload.source is required")
        if payload.get("severity") not in SEVERITIES:
            found.append(f"payload.severity must be one of {', '.join(SEVERITIES)}")
    return found


class PagerDutyReceiver(PostReceiver):
    def __init__(self) -> None:
        super().__init__()
        self.alerts: dict[str, Alert] = {}
        self.pages: list[Alert] = []  # every alert opened, in order
        self.received: list[dict[str, Any]] = []  # every body, accepted or not
        self.refused = 0  # 400s and 500s answered
        self._failing_until = 0.0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/enqueue?routing_key={ROUTING_KEY}"

    def fail_for(self, seconds: float) -> None:
        self._failing_until = time.monotonic() + seconds

    def handle(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            try:
                event = json.loads(raw)
            except ValueError:
                event = None
            self.received.append(event if isinstance(event, dict) else {"raw": raw[:200]})
            if time.monotonic() < self._failing_until:
                self.refused += 1
                return 500, {"status": "error", "message": "receiver outage (lab)"}
            found = problems(event)
            if found:
                self.refused += 1
                return 400, {"status": "invalid event", "message": "Event object is invalid",
                             "errors": found}  # fmt: skip
            return 202, self._apply(event)

    def _apply(self, event: dict[str, Any]) -> dict[str, Any]:
        key = event.get("dedup_key") or f"lab-{len(self.received)}"
        alert = self.alerts.get(key)
        action = event["event_action"]
        if action == "trigger":
            payload = event["payload"]
            if alert is not None and alert.status == "triggered":
                alert.deduplicated += 1
                alert.log.append(f"deduplicated: {payload['summary']}")
            else:
                alert = Alert(key, payload["summary"], payload["severity"])
                self.alerts[key] = alert
                self.pages.append(alert)
        elif action == "resolve" and alert is not None and alert.status == "triggered":
            alert.status = "resolved"
            alert.log.append("resolved")
        return {"status": "success", "message": "Event processed", "dedup_key": key}
