"""The operator's memory: the garbage collector kept from holding the event loop, and freed
heap handed back to the OS (glibc only; elsewhere a no-op). Both pauses are timed
(`venue_operator_pause_seconds`).

glibc keeps freed memory in its heap for reuse. After start-up (every VenueService's first
cycle at once, Kopf's initial lists) the operator's RSS stays at that peak: at 1,000
VenueServices 570 MB, of which `malloc_trim` returns 320 MB (measured, bench/README.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable
from typing import Any

import structlog

from venue_operator.record.telemetry import PAUSES

log = structlog.get_logger(__name__)
TRIM_EVERY_S = 60.0
# A young collection every YOUNG new objects, not CPython's 700. A cycle's objects live a few
# seconds (across its probes' awaits): at 700 they outlived two young collections, were
# promoted, and counted towards the next full collection, which walks every object the
# replica holds with the event loop held: 5-8 a minute at 5,000 VenueServices over 4
# replicas, ~1.5 M objects (a second each). A young collection of YOUNG takes milliseconds.
YOUNG = 50_000
_collecting: list[float] = []  # when the collection running began


def collect_calmly() -> None:
    """From now on: young collections every YOUNG new objects; every collection timed."""
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _collecting[:] = [time.perf_counter()]
    elif _collecting:
        PAUSES.labels(f"gc{info['generation']}").observe(time.perf_counter() - _collecting.pop())


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


async def trim_forever(every: float = TRIM_EVERY_S) -> None:
    """Cancelled at shutdown."""
    trim = _malloc_trim()
    if trim is None:
        log.info("memory.trim_unavailable")
        return
    while True:
        await asyncio.sleep(every)  # a period, not a synchronisation
        with PAUSES.labels("malloc_trim").time():
            trim(0)
