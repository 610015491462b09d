"""Paging on P1/P2 and escalations through a webhook whose URL (with a token) is in a Secret."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.harness import (
    BAD_IMAGE,
    FAST,
    NOTIFY,
    TOKEN,
    Receiver,
    Venue,
    set_image,
    webhook_secret,
)
from venue_lab.operator_process import OperatorProcess
from venue_lab.processes import free_port, wait_until
from venue_lab.session import Lab


def test_p2_pages_with_the_url_from_the_secret_and_never_leaks_it(
    the_lab: Lab, operator: OperatorProcess, namespace: str, receiver: Receiver,
    following_venue: Callable[..., Venue],
) -> None:  # fmt: skip
    webhook_secret(the_lab, namespace, receiver.url)
    venue = following_venue(**FAST, **NOTIFY)
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    wait_until("a P2 page", lambda: any("[P2]" in b.get("text", "") for b in receiver.bodies), 60)
    page = next(b["text"] for b in receiver.bodies if "[P2]" in b["text"])
    assert f"{namespace}/venue-service" in page and "SeverityChanged" in page
    venue.wait_event("RolledBack", timeout=60)
    # The token is in the Secret only: not in status, Events, or the operator's log.
    everything = json.dumps(venue.status()) + json.dumps(venue.events()) + operator.log()
    assert TOKEN not in everything


def test_a_dead_webhook_never_blocks_remediation(
    the_lab: Lab, namespace: str, following_venue: Callable[..., Venue]
) -> None:
    webhook_secret(the_lab, namespace, f"http://127.0.0.1:{free_port()}/hook?token={TOKEN}")
    venue = following_venue(**FAST, **NOTIFY)
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_event("RolledBack", timeout=60)
    venue.wait_health("Healthy", "None")
