"""#22 item 2: a fleet-wide action rate across the operator (fleet/rate.py); an
action beyond it is held and escalated once (remediate/remediator.py)."""

from __future__ import annotations

from tests.unit.test_service_loop import World, bad_rollout, healthy_with_known_good
from venue_operator.fleet.rate import FleetRate
from venue_operator.model.reasons import Reason


def test_a_burst_of_the_rate_then_one_per_interval() -> None:
    now = [0.0]
    fleet = FleetRate(6, clock=lambda: now[0])
    assert [fleet.take() for _ in range(8)] == [True] * 6 + [False] * 2
    now[0] = 9.0  # 6 a minute: one token every 10 s
    assert not fleet.take()
    now[0] = 10.0
    assert fleet.take() and not fleet.take()
    now[0] = 3600.0  # an idle hour refills to the burst, never beyond it
    assert [fleet.take() for _ in range(7)] == [True] * 6 + [False]


async def test_the_services_beyond_the_fleet_rate_are_held_and_escalated_once() -> None:
    """Two services go bad at once with room for one action: the first rolls back, the
    second holds, says so once as an escalation, and writes nothing."""
    fleet = FleetRate(1, clock=lambda: 0.0)  # time stands still: no token comes back
    first, second = World(fleet=fleet), World(fleet=fleet)
    loops = [await healthy_with_known_good(first), await healthy_with_known_good(second)]
    for world, loop in zip((first, second), loops, strict=True):
        await bad_rollout(world, loop)
    for _ in range(8):
        await first.cycles(loops[0], 1)
        await second.cycles(loops[1], 1)
    assert [what for what, _ in first.acts.calls] == ["roll_back"]
    assert second.acts.calls == []
    escalated = [e for _, e in second.events.posted if e.reason is Reason.ESCALATED]
    assert len(escalated) == 1
    assert "fleet-wide rate of 1 actions a minute is used up" in escalated[0].message
    (held,) = [r for r in second.status().history if r.action == "Escalate"]
    assert held.inputs["heldBy"] == "fleet-rate" and held.inputs["held"] == "RollBack"
