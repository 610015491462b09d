"""The rollout guard's Prometheus fallback against real loopback servers: pods refused on
their port are read through the real Prometheus reader (its bounds, its answer checks), and
a Prometheus that fails costs this read only, with a reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from tests.adapters.conftest import Handler
from venue_lab.processes import free_port
from venue_operator.guard.pod_metrics import PodTarget, read_pods
from venue_operator.guard.pod_series import from_prometheus, pod_queries, read_pod_series
from venue_operator.model.rollout_guard import RolloutGuard
from venue_operator.model.status import GuardSource
from venue_operator.observe.endpoints import GRACE, Limits
from venue_operator.observe.prometheus import PrometheusReader
from venue_operator.tenancy.promql_scope import Refused

Serve = Callable[[Handler], Awaitable[str]]
BORN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TIMEOUT = 1.0
PODS = {"venue-old-a": ("old", 1000.0, 2.0), "venue-new-a": ("new", 200.0, 30.0)}


def vector(result: list[tuple[dict[str, str], float]]) -> dict[str, Any]:
    items = [{"metric": labels, "value": [0, str(value)]} for labels, value in result]
    return {"status": "success", "data": {"resultType": "vector", "result": items}}


class Prometheus:
    """Answers the two pod queries with per-pod series, as a scrape by `pod` labels them."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "")
        self.queries.append(query)
        if "http_request_duration_seconds_bucket" in query:
            return web.json_response(vector([
                ({"pod": pod, "le": le}, total if le == "+Inf" else total / 2)
                for pod, (_, total, _) in PODS.items() for le in ("0.1", "+Inf")
            ]))  # fmt: skip
        return web.json_response(vector([
            ({"pod": pod, "status_code": code}, value)
            for pod, (_, total, bad) in PODS.items()
            for code, value in (("200", total - bad), ("503", bad))
        ]))  # fmt: skip


@pytest.fixture
async def reader() -> AsyncIterator[PrometheusReader]:
    reader = PrometheusReader(limits=Limits(timeout=TIMEOUT, max_bytes=1024 * 1024))
    yield reader
    reader.close()


def queries() -> tuple[str, str]:
    scoped = pod_queries(
        {"service": "venue", "namespace": "prod"}, "prod", list(PODS), RolloutGuard()
    )
    assert not isinstance(scoped, Refused)
    return scoped


async def test_pods_refused_on_their_port_are_read_from_prometheus(
    serve: Serve, reader: PrometheusReader
) -> None:
    prometheus = Prometheus()
    url = await serve(prometheus.handle)
    pods = [PodTarget(name, "127.0.0.1", version, BORN, True, 0, False)
            for name, (version, _, _) in PODS.items()]  # fmt: skip
    nobody = RolloutGuard.model_validate({"pods": {"port": free_port()}})  # nobody listens
    direct = await read_pods(pods, TIMEOUT, nobody)
    assert not any(s.reachable for s in direct)
    found = await read_pod_series(reader.query, url, queries())
    assert not isinstance(found, str)
    samples = from_prometheus(direct, found)
    assert [(s.source, s.requests, s.errors, s.health_ok) for s in samples] == [
        (GuardSource.PROMETHEUS, 1000, 2, None),
        (GuardSource.PROMETHEUS, 200, 30, None),
    ]
    assert dict(samples[1].buckets) == {0.1: 100, float("inf"): 200}
    assert len(prometheus.queries) == 2 and reader.queries == 2
    assert all('namespace="prod"' in q and 'pod=~"venue-new-a|venue-old-a"' in q
               for q in prometheus.queries)  # fmt: skip


async def test_a_failing_prometheus_is_a_reason_not_zeros(
    serve: Serve, reader: PrometheusReader
) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="overloaded")

    found = await read_pod_series(reader.query, await serve(broken), queries())
    assert isinstance(found, str) and found.startswith("prometheus query failed")
    assert "overloaded" not in found  # a body is never reflected


async def test_a_matrix_answer_is_refused(serve: Serve, reader: PrometheusReader) -> None:
    async def matrix(request: web.Request) -> web.Response:
        body = {"status": "success", "data": {"resultType": "matrix", "result": []}}
        return web.json_response(body)

    found = await read_pod_series(reader.query, await serve(matrix), queries())
    assert found == "query pod requests returned a range vector (matrix); use an instant vector"


async def test_a_hung_prometheus_is_bounded(serve: Serve, reader: PrometheusReader) -> None:
    released = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await released.wait()
        return web.json_response(vector([]))

    started = time.monotonic()
    try:
        found = await read_pod_series(reader.query, await serve(hang), queries())
    finally:
        released.set()
    assert time.monotonic() - started < 2 * (TIMEOUT + GRACE) + 0.5
    assert found == f"prometheus query failed: no answer within {TIMEOUT:g}s"
