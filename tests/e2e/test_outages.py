"""#21: what the operator says around outages. A bad release rolled out while Prometheus is
down is never called Healthy (status, condition or Event) and is rolled back once the
metrics are back; a second database outage shortly after the first has its circuit breaker
as fast as the first (no cooldown holds it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.harness import BAD_IMAGE, FAST, Venue, get, set_image
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import LabError, wait_until
from venue_lab.session import Lab


def _healthy_said(venue: Venue, since: datetime) -> list[str]:
    """SeverityChanged Events since `since` that called the service healthy."""
    said = []
    for event in venue.events("SeverityChanged"):
        at = event.get("lastTimestamp") or event.get("eventTime") or ""
        if at and datetime.fromisoformat(at.replace("Z", "+00:00")) >= since \
                and "-> None" in event["message"]:  # fmt: skip
            said.append(event["message"])
    return said


def _not_healthy(status: dict[str, Any]) -> None:
    assert status.get("health") != "Healthy", status.get("health")
    healthy = [c for c in status.get("conditions", []) if c["type"] == "Healthy"]
    assert not healthy or healthy[0]["status"] != "True", healthy


def test_a_bad_release_during_a_metrics_gap_is_never_called_healthy_then_rolled_back(
    the_lab: Lab, operator: OperatorProcess, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    gap_started = datetime.now(UTC).replace(microsecond=0)
    the_lab.prometheus.stop()
    try:
        venue.wait_status("health Unknown", lambda s: s.get("health") == "Unknown", 30)
        set_image(the_lab, venue.namespace, BAD_IMAGE)
        gap_ends = time.monotonic() + 60
        while time.monotonic() < gap_ends:
            _not_healthy(venue.status())
            time.sleep(0.5)  # sampling what the operator writes, not waiting for it
    finally:
        the_lab.prometheus.start()
    deadline = time.monotonic() + 90
    while not venue.events("RolledBack"):
        _not_healthy(venue.status())
        assert time.monotonic() < deadline, "not rolled back within 90 s of the gap's end"
        time.sleep(0.25)
    assert _healthy_said(venue, gap_started) == []
    venue.wait_health("Healthy", "None", timeout=60)


def test_a_second_database_outage_has_its_breaker_as_fast_as_the_first(
    the_lab: Lab, following_venue: Callable[..., Venue]
) -> None:
    """Default cooldowns (1 min): the second outage starts as soon as the first one's breaker
    has closed, seconds after that outage ended and ~10 s after the first open (a cooldown
    counted from that open would hold the second one for ~50 s)."""
    venue = following_venue(**FAST)

    def breaker_open() -> bool:
        data = get(the_lab, "configmap", venue.namespace, "venue-service-circuit-breaker")
        return bool(data.get("data", {}).get("open") == "true")

    took: list[float] = []
    for outage in range(2):
        if outage:  # the gap between the outages: until the first one's breaker closed
            wait_until("the circuit breaker closed", lambda: not breaker_open(), 30,
                       interval=0.25)  # fmt: skip
        started = time.monotonic()
        venue.inject(database_down=True)
        wait_until("the circuit breaker open", lambda: _exists_and(breaker_open), 30,
                   interval=0.25)  # fmt: skip
        took.append(time.monotonic() - started)
        time.sleep(5)  # the outage lasts; the breaker must stay open meanwhile
        assert breaker_open()
        venue.heal()
    # two confirmations of 1 s, the probe's timeout and a status write: well under 10 s
    assert max(took) < 10, took


def _exists_and(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except LabError:  # not created yet: the first open creates the ConfigMap
        return False
