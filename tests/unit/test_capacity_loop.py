"""The glue of HPA-aware scaling and the restore, fast: the real loop, decide and ledger,
the World of test_service_loop with an HPA in its index. Who is written, what status keeps
(the loan survives a restart: it is read back from the stored status), which Events go out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.unit.builders import HEALTHY_METRICS, metrics
from tests.unit.test_service_loop import NAME, NS, SPEC, Crash, World
from venue_operator.model.observations import Reading
from venue_operator.model.reasons import Reason
from venue_operator.model.status import ScaledKind

SLOW = metrics(p99_latency=Reading.of(3.0))
HPA = {"name": "venue-hpa", "deployment": NAME, "min": 2, "max": 10, "scaled_object": None}


def world_with_hpa() -> World:
    spec = {
        **SPEC,
        "remediation": {
            "rollback": {"bakeTime": "5s", "recentRolloutWindow": "1s"},
            "scale": {"restoreAfter": "10s"},
            "verifyWindow": "3s",
            "cooldowns": {"scale": "1s"},
        },
    }
    return World(spec=spec, hpas=[dict(HPA)], replicas=2)  # fmt: skip


async def test_an_hpa_gets_its_min_raised_then_restored_after_the_incident() -> None:
    world = world_with_hpa()
    loop = world.loop()
    await world.cycles(loop, 3)
    world.metrics = SLOW
    await world.cycles(loop, 4)
    ups = [args for what, args in world.acts.calls if what == "set_count"]
    # the HPA's minimum, never the Deployment's replicas (both go through set_count)
    assert ups == [(NS, ScaledKind.HPA, "venue-hpa", 3, 2)], world.acts.calls
    loan = world.status().capacity
    assert loan is not None and (loan.original, loan.written) == (2, 3)
    world.hpas = [{**HPA, "min": 3}]  # what the write did
    world.metrics = HEALTHY_METRICS
    world.acts.calls.clear()
    loop = world.loop()  # a restart: the loan comes back from the stored status
    await world.cycles(loop, 5)  # recovered, but not yet healthy for restoreAfter
    assert world.acts.calls == []
    await world.cycles(loop, 10)
    (back,) = world.acts.calls
    assert back == ("set_count", (NS, ScaledKind.HPA, "venue-hpa", 2, None, 3))
    assert world.status().capacity is None  # all given back
    assert Reason.SCALED_BACK in world.events.reasons()
    assert Reason.SCALED_BACK in world.events.reasons("Deployment")


async def test_somebody_elses_value_is_left_alone_and_said_once() -> None:
    world = world_with_hpa()
    loop = world.loop()
    await world.cycles(loop, 3)
    world.metrics = SLOW
    await world.cycles(loop, 2)
    world.hpas = [{**HPA, "min": 3}]  # what the write did
    await world.cycles(loop, 2)
    world.metrics = HEALTHY_METRICS
    world.now += timedelta(seconds=30)  # past the settling of our own write
    world.hpas = [{**HPA, "min": 5}]  # a human raised it further
    world.acts.calls.clear()
    await world.cycles(loop, 20)
    assert world.acts.calls == []
    assert world.events.reasons().count(Reason.RESTORE_ABANDONED) == 1
    assert world.status().capacity is None
    (abandoned,) = world.history("AbandonRestore")
    assert "is 5, not the 3 the operator wrote" in abandoned.reason


class WorldWithoutHpaWatch(World):
    """RBAC denied list/watch on HPAs: handlers.register left the index out."""

    def indexes(self) -> dict[str, Any]:
        found = super().indexes()
        del found["horizontalpodautoscalers"]
        return found


async def test_without_the_hpa_watch_a_capacity_breach_escalates_instead_of_scaling() -> None:
    world = WorldWithoutHpaWatch(spec=world_with_hpa().spec, replicas=2)
    loop = world.loop()
    why = "the operator's ServiceAccount may not list/watch horizontalpodautoscalers.autoscaling"
    loop.ports.missing_permissions = {"horizontalpodautoscalers": why}
    await world.cycles(loop, 3)
    world.metrics = SLOW
    await world.cycles(loop, 4)
    assert world.acts.calls == []  # neither the Deployment nor anything else is written
    (escalation,) = world.history("Escalate")
    assert "whether an HPA scales it is unknown" in escalation.reason and why in escalation.reason
    assert Reason.PERMISSION_MISSING in world.events.reasons()


async def test_killed_before_raising_the_hpa_the_original_is_already_in_status() -> None:
    """Written ahead: the loan (original minReplicas 2) is in status before the HPA write; a
    restart finishes the one write, from that record."""
    world = world_with_hpa()
    loop = world.loop()
    await world.cycles(loop, 3)
    world.metrics = SLOW
    world.acts.crash_next = True
    with pytest.raises(Crash):
        await world.cycles(loop, 4)
    (pending,) = world.history("ScaleUp")
    loan = world.status().capacity
    assert pending.result == "InProgress" and world.acts.calls == []
    assert loan is not None and (loan.kind, loan.original) == (ScaledKind.HPA, 2)
    restarted = world.loop()
    await world.cycles(restarted, 1)
    assert world.acts.calls == [("set_count", (NS, ScaledKind.HPA, "venue-hpa", 3, 2))]
    (done,) = world.history("ScaleUp")
    assert done.result == "Succeeded" and done.correlation_id == pending.correlation_id
    after = world.status().capacity
    assert after is not None and (after.original, after.written) == (2, 3)


async def test_a_refused_first_hpa_write_lends_nothing() -> None:
    world = world_with_hpa()
    loop = world.loop()
    await world.cycles(loop, 3)
    world.metrics = SLOW
    world.acts.refuse = True
    await world.cycles(loop, 4)
    failed = world.history("ScaleUp")  # retried after each (1 s) cooldown, each refused
    assert failed and all(r.result == "Failed" and "forbidden" in r.reason for r in failed)
    assert world.status().capacity is None  # nothing was lent: nothing to give back
    assert Reason.ESCALATED in world.events.reasons()


async def test_without_an_hpa_the_deployment_is_raised_through_the_same_writer() -> None:
    world = World(spec=world_with_hpa().spec, replicas=2)
    loop = world.loop()
    await world.cycles(loop, 3)
    world.metrics = SLOW
    await world.cycles(loop, 4)
    # no annotation on the Deployment (scaled_from None): its loan is kept in status only
    assert world.acts.calls == [("set_count", (NS, ScaledKind.DEPLOYMENT, NAME, 3, None))]
    loan = world.status().capacity
    assert loan is not None and (loan.kind, loan.original, loan.written) == (
        ScaledKind.DEPLOYMENT, 2, 3)  # fmt: skip
    assert Reason.SCALED_UP in world.events.reasons("Deployment")
