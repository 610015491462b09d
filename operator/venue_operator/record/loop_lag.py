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

TICK_S = 0.1  # finer than a probe's deadline: a stall within one shows (`stalled_since`)
WINDOW_TICKS = 100  # the gauge, and `lag()`: the most lag over the last 10 s
# (when the tick ran, how late): the loop was held for about `late` seconds before `ran`
_recent: collections.deque[tuple[float, float]] = collections.deque(maxlen=WINDOW_TICKS)


def lag() -> float:
    """The most the loop ran late over the last window (0 before the first tick)."""
    return max((late for _, late in _recent), default=0.0)


def stalled_since(started: float) -> float:
    """The longest the loop was held (as the ticks saw it) after `started` (monotonic): a
    probe whose answer came while the loop was held times out on a timer taken on time."""
    return max((min(late, ran - started) for ran, late in _recent if ran > started), default=0.0)


async def measure_lag(ticks: int | None = None) -> None:
    """Until cancelled (or `ticks` ticks, for tests): the gauge follows the lag."""
    _recent.clear()
    while ticks is None or ticks > 0:
        planned = time.monotonic() + TICK_S
        await asyncio.sleep(TICK_S)
        ran = time.monotonic()
        _recent.append((ran, max(0.0, ran - planned)))
        LOOP_LAG.set(lag())
        ticks = None if ticks is None else ticks - 1
