"""Faults the operator must survive: its API server restarting, a service that hangs, and
one that answers 10 MB of junk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.harness import BAD_IMAGE, FAST, Venue, evaluations, history, set_image
from venue_lab.processes import rss_mb, wait_until
from venue_lab.session import Lab


def test_api_server_restart_mid_run_then_exactly_one_rollback(
    the_lab: Lab, operator: Any, following_venue: Callable[..., Venue]
) -> None:
    venue = following_venue(**FAST)
    the_lab.cluster.restart("kube-apiserver")
    seen = evaluations(operator, venue)
    wait_until("evaluations resume after the restart",
               lambda: evaluations(operator, venue) >= seen + 3, 60)  # fmt: skip
    venue.wait_health("Healthy", "None")  # the bad rollout lands on a service with no incident
    set_image(the_lab, venue.namespace, BAD_IMAGE)
    venue.wait_status("rolled back", lambda s: any(
        r["action"] == "RollBack" and r["result"] == "Succeeded" for r in s.get("history", [])),
        timeout=120)  # fmt: skip
    venue.wait_health("Healthy", "None")
    venue.wait_event("RolledBack", timeout=120)  # Events may queue behind retries to others
    assert len(history(venue, "RollBack")) == 1
    assert sum(e.get("count", 1) for e in venue.events("RolledBack")) == 1


@pytest.mark.parametrize(
    ("fault", "reason"), [("slow_health", "Timeout"), ("junk_health", "over 65536 bytes")]
)
def test_a_hanging_or_junk_endpoint_costs_bounded_time_and_memory(
    operator: Any, make_venue: Callable[..., Venue], fault: str, reason: str
) -> None:
    name = fault.split("_")[0]
    bad = make_venue(f"{name}-svc", wait=False, probe={"interval": "1s", "timeout": "500ms"})
    healthy = make_venue(f"{name}-steady", probe={"interval": "1s", "timeout": "500ms"})
    bad.wait_scraped()  # one discovery round for both: `healthy` waited for it
    healthy.wait_health("Healthy", "None")
    before = rss_mb(operator.pid)
    bad.inject(**{fault: True})
    bad.wait_health("Down", "P1")
    assert reason in bad.check("health")["reason"]
    # 1 s interval: 10 cycles take ~10 s. Waiting on a hung probe (30 s) would take 300 s;
    # reading two 10 MB answers per cycle would show in RSS.
    count = evaluations(operator, healthy)
    wait_until("10 more evaluations of the healthy service",
               lambda: evaluations(operator, healthy) >= count + 10, 25)  # fmt: skip
    # Its probes were never held up (the error rate may blip over a 5 s window: not the point).
    assert healthy.check("health")["observed"] == "ok"
    grown = rss_mb(operator.pid) - before
    assert grown < 50, f"operator RSS grew {grown:.0f} MB beside a {fault} service"
