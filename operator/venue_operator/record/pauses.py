"""The garbage collector's pauses: timed (`venue_operator_pause_seconds`), not spent on JSON
documents, and full collections on a clock (`full_collections`) instead of CPython's trigger.

CPython's cyclic collector walks a generation's objects with the event loop held, and a full
collection every object the process holds: at 5,000 VenueServices over 4 replicas a replica
ran one every 8-10 s while it started (bench/README.md), each a second or more. An API
list page (500 Pods, some 50,000 objects) or a Prometheus answer collected while being
parsed survived whole, was promoted, and brought the next full collection closer, although
reference counting frees it once read: a document is parsed and read with the collector
paused (`collector_paused`). CPython's thresholds are kept: young collections every 10,000
or 50,000 new objects instead of 700 made each young collection 0.1-0.9 s and each
second-generation one 1-4 s at 5,000 over 4, worse than the full ones they spared.

CPython starts a full collection once the objects promoted since the last one pass a
quarter of those it holds. At 5,000 over 4 a replica holds ~1.3 M objects and promoted
~50,000 a second, most of them the event loop's work in flight (coroutines, handles,
futures, contexts: alive across one young collection, gone by refcount soon after): a
full collection every 7-8 s, 1.5-3.8 s each, for some 40 unreachable objects a minute
(measured, bench/README.md). Fewer objects held would only make them more frequent. So
the third threshold is out of reach and a full collection runs every FULL_EVERY_S, the
first at a random point of it (replicas started together do not pause together).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import Iterator
from typing import Any

from venue_operator.record.telemetry import COLLECTED, PAUSES

_collecting: list[float] = []  # when the collection running began
FULL_EVERY_S = 60.0
_NEVER = 2**31 - 1  # the collector's counters are C ints


def time_collections() -> None:
    """From now on, every collection is timed (once, however often this is called)."""
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)


async def full_collections(every: float = FULL_EVERY_S, first: float | None = None) -> None:
    """From now on, a full collection every `every` seconds and no other (the first after
    `first`, by default a random part of `every`). Cancelled at shutdown: CPython's
    thresholds come back."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], _NEVER)
    try:
        await asyncio.sleep(random.uniform(0, every) if first is None else first)
        while True:
            COLLECTED.inc(gc.collect())
            await asyncio.sleep(every)  # a period, not a synchronisation
    finally:
        gc.set_threshold(*thresholds)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection within: for a JSON document's parse and its reading, which
    make no cycles and must not wait on one (nested or in another thread: the last to end
    enables it again, and never one that found it disabled)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _collecting[:] = [time.perf_counter()]
    elif _collecting:
        PAUSES.labels(f"gc{info['generation']}").observe(time.perf_counter() - _collecting.pop())
