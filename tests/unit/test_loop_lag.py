"""The event loop's lag gauge (record/loop_lag.py): a starved loop shows before its services
go unknown."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from venue_operator.record import loop_lag


def gauge() -> float | None:
    return REGISTRY.get_sample_value("venue_operator_event_loop_lag_seconds")


async def test_a_blocked_event_loop_shows_as_lag_and_an_idle_one_as_none() -> None:
    await loop_lag.measure_lag(ticks=2)
    assert loop_lag.lag() < 0.2 and gauge() == loop_lag.lag()
    ticking = asyncio.create_task(loop_lag.measure_lag(ticks=2))
    await asyncio.sleep(0)  # its first timer is set
    time.sleep(0.8)  # noqa: ASYNC251 - the point: the loop runs nothing meanwhile
    await ticking
    assert 0.25 <= loop_lag.lag() < 2.0, "0.8 s blocked against a 0.5 s tick"
    assert gauge() == loop_lag.lag()
    loop_lag._recent.clear()  # no lag left for the next test to read


async def test_a_stall_shows_after_the_moment_it_overlaps_and_not_before() -> None:
    ticking = asyncio.create_task(loop_lag.measure_lag(ticks=12))
    await asyncio.sleep(0.25)
    before = time.monotonic()
    time.sleep(0.6)  # noqa: ASYNC251 - the loop held
    await ticking
    assert 0.4 <= loop_lag.stalled_since(before) <= 0.8
    assert loop_lag.stalled_since(time.monotonic()) == 0.0, "nothing after now"
    loop_lag._recent.clear()
