"""The scenarios that must end in *no* action: noise, and blindness (Prometheus gone)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests import harness
from venue_lab.processes import wait_until
from venue_lab.session import Lab


def _pending(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: any(
        c["name"] == name and c.get("pendingCount", 0) >= 1 for c in s.get("checks", [])
    )


def test_noisy_but_healthy_gets_no_action(
    the_lab: Lab, operator: Any, following_venue: Callable[..., harness.Venue]
) -> None:
    """Short blips and a high error ratio on too little traffic: seen, never acted on."""
    venue = following_venue(
        sim_args=("--rate=0.5",),  # below minRequestRate: the error ratio is not judged
        probe={"interval": "1s", "timeout": "500ms"},
        confirmation={"breaches": 4, "recoveries": 2, "minRequestRate": 1},
    )
    generation = harness.deployment(the_lab, venue.namespace)["metadata"]["generation"]
    venue.inject(error_ratio=0.5)
    for _ in range(3):  # three health blips, each shorter than the confirmation
        venue.inject(error_ratio=0.5, malformed_health=True)
        venue.wait_status("blip seen (pending, not confirmed)", _pending("health"), 10)
        venue.inject(error_ratio=0.5, malformed_health=False)
        venue.wait_status("blip forgotten", lambda s: not _pending("health")(s), 10)
    seen = harness.evaluations(operator, venue)
    wait_until("5 more evaluations", lambda: harness.evaluations(operator, venue) >= seen + 5, 30)
    status = venue.status()
    assert status["health"] == "Healthy"
    assert "not judged" in next(c for c in status["checks"] if c["name"] == "error_rate")["reason"]
    assert venue.events("ThresholdBreached") == []
    assert status.get("history", []) == []
    assert harness.deployment(the_lab, venue.namespace)["metadata"]["generation"] == generation


def test_prometheus_stopped_mid_run_means_no_action_until_it_returns(
    the_lab: Lab, operator: Any, following_venue: Callable[..., harness.Venue]
) -> None:
    venue = following_venue(**harness.FAST)
    the_lab.prometheus.stop()
    try:
        venue.wait_status("MetricsAvailable=False", lambda s: any(
            c["type"] == "MetricsAvailable" and c["status"] == "False"
            for c in s.get("conditions", [])))  # fmt: skip
        harness.set_image(the_lab, venue.namespace, harness.BAD_IMAGE)  # a bad rollout while blind
        seen = harness.evaluations(operator, venue)
        wait_until("5 evaluations while blind",
                   lambda: harness.evaluations(operator, venue) >= seen + 5, 30)  # fmt: skip
        assert venue.status()["health"] == "Unknown"
        assert harness.image_of(harness.deployment(the_lab, venue.namespace)) == harness.BAD_IMAGE
        assert harness.history(venue, "RollBack") == []
    finally:
        the_lab.prometheus.start()
    # Sight restored: the bad rollout is now seen and rolled back.
    venue.wait_event("RolledBack", timeout=90)
    venue.wait_health("Healthy", "None")
