"""cli/memory.py: the garbage collector's settings and its pauses, timed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from venue_operator.cli import memory

FULL = {"cause": "gc2"}


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


def count(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("venue_operator_pause_seconds_count", labels) or 0.0


def test_young_collections_are_rarer_and_the_older_generations_as_they_were(
    restored: None,
) -> None:
    older = gc.get_threshold()[1:]
    memory.collect_calmly()
    memory.collect_calmly()
    assert gc.get_threshold() == (memory.YOUNG, *older)
    assert gc.callbacks.count(memory._timed) == 1  # timed once, however often it is called


def test_each_collection_is_timed_by_its_generation(restored: None) -> None:
    before, young = count(FULL), count({"cause": "gc0"})
    memory.collect_calmly()
    gc.collect()
    gc.collect(0)
    assert count(FULL) == before + 1
    assert count({"cause": "gc0"}) >= young + 1
    total = REGISTRY.get_sample_value("venue_operator_pause_seconds_sum", FULL) or 0.0
    assert total > 0.0
