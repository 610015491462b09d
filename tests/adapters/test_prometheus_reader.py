"""The Prometheus adapter against a real loopback server that never answers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from venue_operator.observe.prometheus import PrometheusReader, Target


async def test_a_prometheus_that_never_answers_reads_as_a_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    released = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await released.wait()
        return web.json_response({"status": "success", "data": {"result": []}})

    url = await serve(hang)
    reader = PrometheusReader(timeout=0.5)
    target = Target(key="prod/a", url=url, labels={"namespace": "prod", "service": "a"})
    try:
        readings = (await reader.read([target]))["prod/a"]
    finally:
        released.set()
    reason = readings.error_rate.unknown_reason or ""
    assert reason.startswith("prometheus query failed: ReadTimeout:"), reason
    assert "read timeout=0.5" in reason and readings.p99_latency.value is None
