"""The rollout guard's clock (loop/guard_clock.py): between rollouts a loop sleeps until its
cycle, and is woken for a guard tick only when something a tick would notice moved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kopf._core.intents.stoppers import DaemonStopper

from tests.unit.test_service_loop import NAME, TickedWatch, World
from tests.unit.test_workload_watch import Cluster, pod, replicaset, started
from tests.unit.waiting import eventually
from venue_operator.loop.guard_clock import GuardClock
from venue_operator.loop.lifetime import Lifetime


async def test_a_moved_marker_is_woken_and_a_still_one_is_not() -> None:
    clock, values, looks = GuardClock(), {"a": 1, "b": 1}, {"a": 0, "b": 0}

    def marker(name: str) -> Callable[[], object]:
        def look() -> object:
            looks[name] += 1
            return values[name]

        return look

    moving = clock.moved(marker("a"), 1, 0.01)
    still = clock.moved(marker("b"), 1, 0.01)
    await eventually("three looks at each", lambda: min(looks.values()) >= 3)
    assert not moving.done() and not still.done() and len(clock) == 2  # nothing moved
    values["a"] = 2
    await eventually("the moved one woken", moving.done)
    assert not still.done() and len(clock) == 1
    still.cancel()  # its cycle came first
    await eventually("nobody left to look at", lambda: len(clock) == 0)
    assert clock._task is not None
    await eventually("the clock's task ends with nobody waiting", clock._task.done)


async def test_a_marker_that_fails_wakes_the_loop_to_say_so() -> None:
    def broken() -> object:
        raise KeyError("deployments")

    moved = GuardClock().moved(broken, None, 0.01)
    await asyncio.wait_for(moved, 1)


async def test_between_rollouts_the_loop_sleeps_until_a_rollout_wakes_it() -> None:
    """The loop's wait, with the clock: no tick while the Deployment's ReplicaSets stand still
    (the cycle, 5 s away, is not due), a tick within the guard's interval of a new one."""
    world = World()
    loop = world.loop()
    ticks: list[str] = []
    cluster = Cluster(("replicasets", replicaset(NAME, "bbb")), ("pods", pod(NAME, "bbb", 1)))
    kept = await started(cluster)
    stopper = DaemonStopper()
    lifetime = Lifetime(stopper.async_waiter, asyncio.Event())
    try:
        loop.watch = TickedWatch(ticks)  # type: ignore[assignment]
        loop.ports = replace(loop.ports, workloads=kept, guard_clock=GuardClock())
        loop._guard_interval = lambda: 0.02  # type: ignore[method-assign]
        loop._interval = lambda: 5.0  # type: ignore[method-assign]
        await loop.guard_step()
        assert ticks == ["bbb"]
        woken: list[float] = []
        step = loop.guard_step

        async def counted() -> None:
            woken.append(time.monotonic())
            await step()

        loop.guard_step = counted  # type: ignore[method-assign]
        looks: list[float] = []
        marker = loop._marker

        def looked(spec: Any) -> Any:
            looks.append(time.monotonic())
            return marker(spec)

        loop._marker = looked  # type: ignore[method-assign]
        began = time.monotonic()
        waiting = asyncio.create_task(loop._wait_guarding(lifetime, began))
        await eventually("the clock looking ten times", lambda: len(looks) >= 10)
        assert ticks == ["bbb"] and not waiting.done()  # nothing moved, no tick
        assert woken == []  # not even woken to look (on the 20 ms timer: once a look)
        await cluster.send("replicasets", "ADDED", replicaset(NAME, "ccc"))  # a rollout
        world.template = "ccc"
        loop.indexes.update(world.indexes())
        await eventually("the rollout ticked", lambda: ticks == ["bbb", "ccc"], within=2)
        assert len(woken) == 1 and not waiting.done()  # woken once, before the cycle
        lifetime.gone.set()  # deleted: the wait ends at once
        await asyncio.wait_for(waiting, 2)
    finally:
        await kept.stop()
