"""The Alertmanager sink against real loopback HTTP servers: what it posts, and that a
refusing, failing or hung Alertmanager is reported, bounded and retried, never raised."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from venue_lab.processes import free_port
from venue_operator.model.reasons import Reason
from venue_operator.model.spec import Notification
from venue_operator.model.status import (
    Health,
    Incident,
    IncidentEntry,
    Severity,
    VenueServiceStatus,
)
from venue_operator.paging.alertmanager import AlertmanagerSender
from venue_operator.paging.alerts import RESEND
from venue_operator.tenancy.policy import Tenancy

SINK = Notification.model_validate({"alertmanager": {}})
OPENED = datetime.now(UTC) - timedelta(minutes=1)
FIRST = IncidentEntry(at=OPENED, severity=Severity.P2, message="m")
INCIDENT = Incident(id="inc-1", opened_at=OPENED, severity=Severity.P2, timeline=[FIRST])
OPEN = VenueServiceStatus(health=Health.DEGRADED, severity=Severity.P2, incident=INCIDENT)
RESOLVED = VenueServiceStatus(
    health=Health.HEALTHY, severity=Severity.NONE,
    incident=INCIDENT.model_copy(update={"resolved_at": datetime.now(UTC)}),
)  # fmt: skip


class Alertmanager:
    """A stand-in for /api/v2/alerts: records bodies, answers `status` after `delay`."""

    def __init__(self) -> None:
        self.bodies: list[list[dict[str, Any]]] = []
        self.status, self.delay = 200, 0.0
        self.received = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.received.set()
        await asyncio.sleep(self.delay)
        return web.Response(status=self.status)


@contextlib.asynccontextmanager
async def serving(fake: Alertmanager) -> AsyncIterator[str]:
    """`fake` on a loopback port; its URL."""
    app = web.Application()
    app.router.add_post("/api/v2/alerts", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def am() -> AsyncIterator[tuple[Alertmanager, str]]:
    fake = Alertmanager()
    async with serving(fake) as url:
        yield fake, url


@pytest.fixture
async def sender_for() -> AsyncIterator[Callable[..., AlertmanagerSender]]:
    async with httpx.AsyncClient() as http:

        def make(url: str | None, timeout: float = 2.0, resend: timedelta = RESEND,
                 **tenancy: Any) -> AlertmanagerSender:  # fmt: skip
            return AlertmanagerSender(None, http, url, Tenancy(**tenancy),  # type: ignore[arg-type]
                                      resend=resend, timeout=timeout)  # fmt: skip

        yield make


async def step(sender: AlertmanagerSender, status: VenueServiceStatus) -> Any:
    problem = sender.update("shop", "venue", SINK, status)
    await sender.settle()
    return sender.update("shop", "venue", SINK, status) if problem is None else problem


async def test_fires_once_then_ends_it(am, sender_for) -> None:  # type: ignore[no-untyped-def]
    fake, url = am
    sender = sender_for(url)
    assert await step(sender, OPEN) is None
    await step(sender, OPEN)  # unchanged and sent a moment ago: nothing new
    assert len(fake.bodies) == 1
    (alert,) = fake.bodies[0]
    assert alert["labels"]["severity"] == "P2" and alert["annotations"]["incident_id"] == "inc-1"
    assert await step(sender, RESOLVED) is None
    (ended,) = fake.bodies[1]
    assert ended["labels"] == alert["labels"] and ended["endsAt"] < alert["endsAt"]
    await step(sender, RESOLVED)
    assert len(fake.bodies) == 2, "an ended alert is not sent again"


async def test_a_failing_alertmanager_is_reported_and_retried_later(am, sender_for) -> None:  # type: ignore[no-untyped-def]
    fake, url = am
    fake.status = 500
    sender = sender_for(url)
    sender.update("shop", "venue", SINK, OPEN)
    await sender.settle()
    problem = sender.update("shop", "venue", SINK, OPEN)
    assert problem is not None and problem.reason is Reason.ALERT_NOT_DELIVERED
    assert "HTTP 500" in problem.message
    await sender.settle()
    assert len(fake.bodies) == 1, "not hammered: retried after a quarter resend period"


async def test_a_hung_alertmanager_costs_one_deadline(am, sender_for) -> None:  # type: ignore[no-untyped-def]
    fake, url = am
    fake.delay = 5.0
    sender = sender_for(url, timeout=0.3)
    started = time.monotonic()
    sender.update("shop", "venue", SINK, OPEN)  # returns at once: the post is in the background
    assert time.monotonic() - started < 0.1
    await sender.settle()
    assert time.monotonic() - started < 1.5
    problem = sender.update("shop", "venue", SINK, OPEN)
    assert problem is not None and "TimeoutError" in problem.message


@pytest.mark.parametrize(
    ("default", "spec_url", "allowed", "refused"),
    [
        (None, None, (), "no --alertmanager-url"),
        ("http://am:9093", "http://evil.example", (), "not the operator's Alertmanager"),
    ],
)
async def test_a_refused_alertmanager_is_never_posted_to(  # type: ignore[no-untyped-def]
    sender_for, default, spec_url, allowed, refused
) -> None:
    sink = Notification.model_validate({"alertmanager": {"url": spec_url} if spec_url else {}})
    sender = sender_for(default, alertmanager_urls=allowed)
    problem = sender.update("shop", "venue", sink, OPEN)
    assert problem is not None and problem.reason is Reason.TARGET_REFUSED
    assert refused in problem.message
    assert not sender._tasks


async def test_an_open_incident_is_re_sent_every_period(am, sender_for) -> None:  # type: ignore[no-untyped-def]
    fake, url = am
    sender = sender_for(url, resend=timedelta(milliseconds=200))
    deadline = time.monotonic() + 5
    while len(fake.bodies) < 3 and time.monotonic() < deadline:
        sender.update("shop", "venue", SINK, OPEN)  # as the loop does, every cycle
        await asyncio.sleep(0.02)
    await sender.settle()
    assert len(fake.bodies) == 3
    ends = [body[0]["endsAt"] for body in fake.bodies]
    assert ends == sorted(ends) and len(set(ends)) == 3, "each re-send extends its validity"


async def test_a_hung_alertmanager_delays_no_other(am, sender_for) -> None:  # type: ignore[no-untyped-def]
    fake, url = am
    hung = Alertmanager()
    hung.delay = 5.0
    async with serving(hung) as hung_url:
        sender = sender_for(url, timeout=1.0, alertmanager_urls=(hung_url,))
        tenant = Notification.model_validate({"alertmanager": {"url": hung_url}})
        for i in range(8):  # more than its slots
            sender.update("shop", f"hung-{i}", tenant, OPEN)
        sender.update("shop", "venue", SINK, OPEN)
        # sooner than the 1 s a post waiting for a slot behind the hung ones would take
        await asyncio.wait_for(fake.received.wait(), 0.9)
        await sender.settle()
