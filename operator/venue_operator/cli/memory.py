"""Freed heap handed back to the OS (glibc only; elsewhere a no-op), every TRIM_EVERY_S and
timed (`venue_operator_pause_seconds{cause="malloc_trim"}`; the collector's pauses are
record/pauses.py's).

glibc keeps freed memory in its heap for reuse. After start-up (every VenueService's first
cycle at once, Kopf's initial lists) the operator's RSS stays at that peak: at 1,000
VenueServices 570 MB, of which `malloc_trim` returns 320 MB (measured, bench/README.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

import structlog

from venue_operator.record.telemetry import PAUSES

log = structlog.get_logger(__name__)
TRIM_EVERY_S = 60.0


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
