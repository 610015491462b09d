"""The event loop's own lag, measured: a timer every TICK_S, and how late it ran.

A replica short of CPU runs every timer late; its probes' deadlines then pass while the loop
is busy elsewhere (observe/health.py says OPERATOR_LATE, loop/service_loop.py skips those
cycles) and its metrics reads outlast their wait (observe/batcher.py says so). The gauge
shows an on-call engineer a starved replica before its services go unknown.
"""

from __future__ import annotations

import asyncio
import collections
import time

from venue_operator.record.telemetry import LOOP_LAG

TICK_S = 0.5
WINDOW_TICKS = 20  # the gauge, and `lag()`: the most lag over the last 10 s
_recent: collections.deque[float] = collections.deque(maxlen=WINDOW_TICKS)


def lag() -> float:
    """The most the loop ran late over the last window (0 before the first tick)."""
    return max(_recent, default=0.0)


async def measure_lag(ticks: int | None = None) -> None:
    """Until cancelled (or `ticks` ticks, for tests): the gauge follows the lag."""
    _recent.clear()
    while ticks is None or ticks > 0:
        planned = time.monotonic() + TICK_S
        await asyncio.sleep(TICK_S)
        _recent.append(max(0.0, time.monotonic() - planned))
        LOOP_LAG.set(lag())
        ticks = None if ticks is None else ticks - 1
