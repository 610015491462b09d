"""record/pauses.py: the collector's settings, its pauses timed, and JSON documents read with
it paused (kube/watches.py's list pages, observe/answers.py's Prometheus answers)."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from venue_operator.kube import watches
from venue_operator.observe import answers
from venue_operator.record import pauses

FULL = {"cause": "gc2"}


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds, callbacks, enabled = gc.get_threshold(), list(gc.callbacks), gc.isenabled()
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks
    (gc.enable if enabled else gc.disable)()


def count(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("venue_operator_pause_seconds_count", labels) or 0.0


def test_collections_are_timed_once_and_the_thresholds_are_cpythons(restored: None) -> None:
    thresholds = gc.get_threshold()
    pauses.time_collections()
    pauses.time_collections()
    assert gc.get_threshold() == thresholds
    assert gc.callbacks.count(pauses._timed) == 1


def test_each_collection_is_timed_by_its_generation(restored: None) -> None:
    before, young = count(FULL), count({"cause": "gc0"})
    pauses.time_collections()
    gc.collect()
    gc.collect(0)
    assert count(FULL) == before + 1
    assert count({"cause": "gc0"}) >= young + 1
    total = REGISTRY.get_sample_value("venue_operator_pause_seconds_sum", FULL) or 0.0
    assert total > 0.0


def test_the_collector_is_paused_within_and_back_after_even_nested(restored: None) -> None:
    gc.enable()
    with pauses.collector_paused():
        assert not gc.isenabled()
        with pauses.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it paused: it leaves it so
    assert gc.isenabled()
    with pytest.raises(ValueError), pauses.collector_paused():
        raise ValueError("a reader that fails")
    assert gc.isenabled()


def test_a_collector_disabled_by_someone_else_stays_disabled(restored: None) -> None:
    gc.disable()
    with pauses.collector_paused():
        pass
    assert not gc.isenabled()


class PagedApi:
    """kubernetes_asyncio's ApiClient as kube/calls.py calls it: two pages of a list."""

    def __init__(self) -> None:
        self.pages = [
            {"items": [{"n": 1}, {"n": 2}], "metadata": {"continue": "next"}},
            {"items": [{"n": 3}], "metadata": {"resourceVersion": "42"}},
        ]

    async def param_serialize(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return (kwargs["query_params"],)

    async def call_api(self, query: list[tuple[str, str]]) -> Any:
        page = self.pages[1 if ("continue", "next") in query else 0]

        class Response:
            status = 200

            async def read(self) -> bytes:
                return json.dumps(page).encode()

        return Response()


async def test_a_list_page_is_parsed_and_kept_with_the_collector_paused(restored: None) -> None:
    gc.enable()
    kept: list[tuple[int, bool]] = []
    version = await watches.list_each(
        PagedApi(), "/api/v1/pods", lambda obj: kept.append((obj["n"], gc.isenabled()))
    )
    assert version == "42" and kept == [(1, False), (2, False), (3, False)]
    assert gc.isenabled()


def test_a_prometheus_answer_is_parsed_with_the_collector_paused(
    restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.enable()
    seen: list[bool] = []
    real = json.loads

    def loads(body: bytes) -> Any:
        seen.append(gc.isenabled())
        return real(body)

    monkeypatch.setattr(answers.json, "loads", loads)
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    assert isinstance(answers.parse(json.dumps(body).encode()), answers.Answer)
    assert seen == [False] and gc.isenabled()
