"""The garbage collector's pauses: timed (`venue_operator_pause_seconds`), and not spent on
JSON documents.

CPython's cyclic collector walks a generation's objects with the event loop held, and a full
collection every object the process holds: at 5,000 VenueServices over 4 replicas a replica
ran one every 8-10 s while it started (bench/README.md), each a second or more. An API
list page (500 Pods, some 50,000 objects) or a Prometheus answer collected while being
parsed survived whole, was promoted, and brought the next full collection closer, although
reference counting frees it once read: a document is parsed and read with the collector
paused (`collector_paused`). CPython's thresholds are kept: young collections every 10,000
or 50,000 new objects instead of 700 made each young collection 0.1-0.9 s and each
second-generation one 1-4 s at 5,000 over 4, worse than the full ones they spared.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from typing import Any

from venue_operator.record.telemetry import PAUSES

_collecting: list[float] = []  # when the collection running began


def time_collections() -> None:
    """From now on, every collection is timed (once, however often this is called)."""
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)


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
