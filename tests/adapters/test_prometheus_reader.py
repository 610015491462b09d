"""The Prometheus adapter against real loopback servers: one hostile URL or query costs
the services that use it, never the others, and every read is bounded in time and size."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from tests.adapters.conftest import Handler
from venue_operator.model.observations import NO_SERIES, MetricReadings
from venue_operator.observe.endpoints import GRACE, Limits
from venue_operator.observe.prometheus import BY_CLASS, CODE, TEMPLATES, PrometheusReader, Target

# 2 s, not 1: a queue behind the hostile batch delays the healthy queries by TIMEOUT, while
# the full tier's load alone delayed them 0.87 s once (this loop serves both sides)
TIMEOUT = 2.0
# a slot wait and a request, each bounded by TIMEOUT, plus the thread's grace and slack
BOUND = 2 * (TIMEOUT + GRACE) + 0.5
MIB = 1024 * 1024
BODY_MARKER = "do-not-reflect-this-body"

Serve = Callable[[Handler], Awaitable[str]]
# a batch's queries: one per metric, but one for the three request rates, and the top tenants;
# requests_served only for services with no request rate series
QUERIES = len(TEMPLATES) - len(BY_CLASS) + 1 + 1 - 1  # requests_served: only if no rate


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [0, value]} for labels, value in samples]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


GOOD_LABELS = {"namespace": "prod", "service": "good"}


class Healthy:
    """A Prometheus that answers every query with one series for `good`, and records
    when each query arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        if request.query.get("query") == "up[1m]":  # a range vector, as Prometheus answers it
            matrix = [{"metric": GOOD_LABELS, "values": [[0, "1"], [15, "1"]]}]
            body = {"status": "success", "data": {"resultType": "matrix", "result": matrix}}
            return web.json_response(body)
        if CODE in request.query.get("query", ""):  # every request a 5xx
            return web.json_response(vector(({**GOOD_LABELS, CODE: "503"}, "0.25")))
        return web.json_response(vector((GOOD_LABELS, "0.25")))


@pytest.fixture
async def reader() -> AsyncIterator[PrometheusReader]:
    reader = PrometheusReader(limits=Limits(timeout=TIMEOUT, max_bytes=2 * MIB))
    yield reader
    reader.close()


def target(url: str, service: str = "good", **overrides: str) -> Target:
    labels = {"namespace": "prod", "service": service}
    return Target(key=f"prod/{service}", url=url, labels=labels, overrides=overrides)


def assert_good(readings: MetricReadings) -> None:
    assert readings.request_rate.value == 0.25, readings.request_rate
    assert readings.p99_latency.value == 0.25
    assert readings.error_rate.value == 1.0  # 0.25 5xx/s of 0.25 req/s


async def read_beside_healthy(
    serve: Serve, reader: PrometheusReader, hostile: Handler
) -> tuple[MetricReadings, MetricReadings]:
    """Reads `bad` on the hostile URL and `good` on a healthy one in the same `read`;
    asserts the bounds every case shares and returns (bad, good)."""
    healthy = Healthy()
    good_url, bad_url = await serve(healthy.handle), await serve(hostile)
    started = time.monotonic()
    # the hostile batch first: a shared queue would put the healthy queries behind it
    out = await asyncio.wait_for(
        reader.read([target(bad_url, "bad"), target(good_url)]), timeout=BOUND * 2
    )
    assert time.monotonic() - started < BOUND
    assert len(healthy.arrivals) == QUERIES
    assert max(healthy.arrivals) - started < TIMEOUT / 2, "healthy queries never wait"
    assert_good(out["prod/good"])
    return out["prod/bad"], out["prod/good"]


def reasons(readings: MetricReadings) -> set[str]:
    return {getattr(readings, name).unknown_reason or "" for name in TEMPLATES}


async def test_a_hung_prometheus(serve: Serve, reader: PrometheusReader) -> None:
    released = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await released.wait()
        return web.json_response(vector())

    try:
        bad, _ = await read_beside_healthy(serve, reader, hang)
    finally:
        released.set()
    assert bad.p99_latency.value is None
    assert reasons(bad) == {f"prometheus query failed: no answer within {TIMEOUT:g}s"}


async def assert_capped(serve: Serve, reader: PrometheusReader, handler: Any) -> None:
    """The hostile answer is cut at the 2 MiB cap, and memory never holds much more."""
    tracemalloc.start()
    try:
        bad, _ = await read_beside_healthy(serve, reader, handler)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert reasons(bad) == {f"prometheus query failed: answer over {2 * MIB} bytes"}


async def test_a_50_mb_body_is_cut_at_the_cap(serve: Serve, reader: PrometheusReader) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to refuse it by
        await response.prepare(request)
        chunk = b" " * 65536
        for _ in range(800):  # 50 MiB
            await response.write(chunk)
        return response

    # 4 queries in flight, each held to the 2 MiB cap: nothing like 50 MB, let alone 4 x 50
    await assert_capped(serve, reader, huge)


async def test_a_gzip_bomb_is_capped_as_it_inflates(serve: Serve, reader: PrometheusReader) -> None:
    bomb = gzip.compress(b" " * (50 * MIB), compresslevel=9)  # ~50 kB on the wire

    async def inflating(_: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip"}
        return web.Response(body=bomb, headers=headers, content_type="application/json")

    await assert_capped(serve, reader, inflating)


async def test_a_declared_huge_body_is_refused_unread(
    serve: Serve, reader: PrometheusReader
) -> None:
    async def declared(_: web.Request) -> web.Response:
        return web.Response(body=b" " * (3 * MIB), content_type="application/json")

    bad, _ = await read_beside_healthy(serve, reader, declared)
    expected = f"prometheus query failed: answer over {2 * MIB} bytes (Content-Length {3 * MIB})"
    assert reasons(bad) == {expected}


async def endless(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    while True:  # until the client goes away
        await response.write(b"[" * 4096)


async def trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    while True:  # a byte well within every socket timeout, forever
        await response.write(b" ")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (endless, f"answer over {2 * MIB} bytes"),
        (trickle, f"answer not complete within {TIMEOUT:g}s"),
    ],
    ids=["a never-ending stream", "a body that trickles forever meets the deadline"],
)
async def test_an_answer_that_never_ends(
    serve: Serve, reader: PrometheusReader, handler: Any, reason: str
) -> None:
    bad, _ = await read_beside_healthy(serve, reader, handler)
    assert reasons(bad) == {f"prometheus query failed: {reason}"}


async def test_a_500_with_a_1_mb_body_yields_its_status_only(
    serve: Serve, reader: PrometheusReader
) -> None:
    async def error(_: web.Request) -> web.Response:
        return web.Response(status=500, text=BODY_MARKER * (MIB // len(BODY_MARKER)))

    bad, _ = await read_beside_healthy(serve, reader, error)
    assert reasons(bad) == {"prometheus query failed: HTTP 500"}


async def test_a_redirect_loop_is_not_followed(serve: Serve, reader: PrometheusReader) -> None:
    hops = 0

    async def loop(request: web.Request) -> web.Response:
        nonlocal hops
        hops += 1
        raise web.HTTPFound(str(request.url))

    bad, _ = await read_beside_healthy(serve, reader, loop)
    assert reasons(bad) == {"prometheus query failed: HTTP 302 (redirects are not followed)"}
    assert hops == QUERIES, "one request per query: no hop followed"


async def test_a_non_json_200(serve: Serve, reader: PrometheusReader) -> None:
    async def html(_: web.Request) -> web.Response:
        return web.Response(text=f"<html>{BODY_MARKER}</html>", content_type="text/html")

    bad, _ = await read_beside_healthy(serve, reader, html)
    assert reasons(bad) == {"prometheus query failed: answer is not JSON"}


async def test_a_range_vector_answer(serve: Serve, reader: PrometheusReader) -> None:
    async def matrix(_: web.Request) -> web.Response:
        series = [{"metric": {"namespace": "prod", "service": "bad"}, "values": [[0, "1"]]}]
        body = {"status": "success", "data": {"resultType": "matrix", "result": series}}
        return web.json_response(body)

    bad, _ = await read_beside_healthy(serve, reader, matrix)
    assert bad.p99_latency.unknown_reason == (
        "query p99_latency returned a range vector (matrix); use an instant vector"
    )


async def test_a_malformed_sample_costs_its_series_only(
    serve: Serve, reader: PrometheusReader
) -> None:
    async def odd(_: web.Request) -> web.Response:
        bad = {"metric": {"namespace": "prod", "service": "bad"}, "value": [0, BODY_MARKER]}
        other = {"metric": {"namespace": "prod", "service": "other"}}  # no "value" at all
        body = {"status": "success", "data": {"resultType": "vector", "result": [bad, other]}}
        return web.json_response(body)

    url = await serve(odd)
    out = await reader.read([target(url, "bad"), target(url, "other")])
    assert out["prod/bad"].p99_latency.unknown_reason == "sample value is not a number"
    assert out["prod/other"].p99_latency.unknown_reason == "sample has no value"


async def test_a_range_vector_override_costs_that_metric_of_that_service_only(
    serve: Serve, reader: PrometheusReader
) -> None:
    url = await serve(Healthy().handle)
    typo = target(url, "good", error_rate="up[1m]")
    other = Target("dev/good", url, {"namespace": "prod", "service": "good"})
    out = await reader.read([typo, other])
    assert out["prod/good"].error_rate.unknown_reason == (
        "override errorRate returned a range vector (matrix); use an instant vector"
    )
    assert out["prod/good"].p99_latency.value == 0.25, "its other metrics are read"
    assert_good(out["dev/good"])


async def test_tenant_rates_are_read_only_for_services_near_an_incident(
    serve: Serve, reader: PrometheusReader
) -> None:
    queries: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        query = request.query.get("query", "")
        queries.append(query)
        if "tenant" in query and "topk" in query:
            b = {**GOOD_LABELS, "tenant": "tenant-b"}
            a = {**GOOD_LABELS, "tenant": "tenant-a"}
            failing = "5.." in query
            return web.json_response(
                vector((b, "2" if failing else "4"), (a, "0.5" if failing else "10"))
            )
        if CODE in request.query.get("query", ""):  # every request a 5xx
            return web.json_response(vector(({**GOOD_LABELS, CODE: "503"}, "0.25")))
        return web.json_response(vector((GOOD_LABELS, "0.25")))

    url = await serve(handle)
    calm = (await reader.read([target(url)]))["prod/good"]
    assert calm.tenants == () and not any("topk" in q for q in queries)
    queries.clear()
    near = replace(target(url), impact=True)
    readings = (await reader.read([near]))["prod/good"]
    assert [q for q in queries if "topk" in q] and len(queries) == QUERIES + 2
    assert all('namespace=~"prod"' in q for q in queries if "topk" in q)
    assert [(t.tenant, t.requests, t.failing) for t in readings.tenants] == [
        ("tenant-b", 4, 2),
        ("tenant-a", 10, 0.5),
    ]


async def test_a_shards_batch_of_many_services_is_one_post_naming_each(
    serve: Serve, reader: PrometheusReader
) -> None:
    """A replica's batch selector names each of its services (its share of the fleet, not
    every series): past the URL limit proxies keep, the query goes as a POST form, as
    Prometheus' API allows, and each service still gets its own series."""
    services = [f"venue-service-{i:04d}" for i in range(1250)]
    asked: list[tuple[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        query = str(form.get("query") or request.query.get("query") or "")
        asked.append((request.method, query))
        return web.json_response(vector(*(({"namespace": "prod", "service": s}, "0.25")
                                           for s in services)))  # fmt: skip

    url = await serve(handle)
    out = await reader.read([target(url, s) for s in services])
    assert asked and {method for method, _ in asked} == {"POST"}
    assert all(f'service=~"{services[0]}|' in query for _, query in asked), asked[0][1][:300]
    assert all(services[-1] in query for _, query in asked)
    assert out[f"prod/{services[-1]}"].request_rate.value == 0.25
    short: list[str] = []

    async def one(request: web.Request) -> web.Response:
        short.append(request.method)
        if CODE in request.query.get("query", ""):  # every request a 5xx
            return web.json_response(vector(({**GOOD_LABELS, CODE: "503"}, "0.25")))
        return web.json_response(vector((GOOD_LABELS, "0.25")))

    await reader.read([target(await serve(one))])
    assert set(short) == {"GET"}  # a short query stays a GET


SERVED_QUERY = "sum by (namespace,service) (http_requests_total{"


async def test_whether_any_request_was_served_is_asked_only_for_services_with_no_rate(
    serve: Serve, reader: PrometheusReader
) -> None:
    """`requests_served` tells an idle service from one whose rate needs two scrapes: one
    query naming only the services whose request rate has no series, none when all have."""
    queries: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        query = request.query.get("query", "")
        queries.append(query)
        if CODE in query:  # only "busy" has request series
            return web.json_response(vector(({"namespace": "prod", "service": "busy"}, "3")))
        if query.startswith(SERVED_QUERY):
            return web.json_response(vector(({"namespace": "prod", "service": "fresh"}, "7")))
        return web.json_response(vector())

    url = await serve(handle)
    out = await reader.read([target(url, "busy"), target(url, "idle"), target(url, "fresh")])
    served = [q for q in queries if q.startswith(SERVED_QUERY)]
    assert len(served) == 1 and "idle" in served[0] and "fresh" in served[0]
    assert "busy" not in served[0]
    assert out["prod/busy"].request_rate.value == 3
    assert (out["prod/idle"].requests_served.unknown_reason or "").startswith(NO_SERIES)
    assert out["prod/fresh"].requests_served.value == 7, "served, its rate not yet there"
    queries.clear()
    await reader.read([target(url, "busy")])
    assert len(queries) == QUERIES and not any(q.startswith(SERVED_QUERY) for q in queries)
