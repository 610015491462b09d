"""The garbage collector's pauses: timed (`venue_operator_pause_seconds`), short and rare.

CPython's cyclic collector walks a generation's objects with the event loop held, and a full
collection every object the process holds. At 5,000 VenueServices over 4 replicas each held
~1.5 M, and with CPython's settings ran a full collection every 8-10 s (a second or more each,
bench/README.md): the loop's timers ran seconds late, its probes were taken late, cycles went
unjudged. What made them come so often was the JSON documents: an API list page (500 Pods,
some 50,000 objects) or a Prometheus answer, collected while being parsed, survived whole,
was promoted, and counted towards the next full collection, although reference counting
frees it once read. So:

- a document is parsed and consumed with the collector paused (`collector_paused`): it
  holds no cycles, and what is left of it when the block ends is what its reader keeps;
- young collections run every YOUNG new objects rather than 700: a cycle's objects live a
  few seconds (across its probes' awaits) and die young instead of being promoted.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from typing import Any

from venue_operator.record.telemetry import PAUSES

YOUNG = 10_000
_collecting: list[float] = []  # when the collection running began


def collect_calmly() -> None:
    """From now on: young collections every YOUNG new objects; every collection timed."""
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
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
