"""The rollout guard's pod reader (guard/pod_metrics.py) against the simulator's real per-pod
endpoints on loopback: counters, health, and every way a pod can fail to answer."""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import ValidationError

from tests.adapters.conftest import Handler
from venue_lab.processes import free_port
from venue_lab.simulator import Simulator
from venue_lab.tls import self_signed
from venue_operator.guard.pod_metrics import PodTarget, counters, read_pod, read_pods
from venue_operator.model.rollout_guard import PodEndpoint, RolloutGuard
from venue_operator.observe.http import Dialer

BORN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def on(port: int, **fields: object) -> RolloutGuard:
    return RolloutGuard.model_validate({"pods": {"port": port, **fields}})


def target(name: str, port_host: str = "127.0.0.1", ready: bool = True) -> PodTarget:
    return PodTarget(name, port_host, "h1", BORN, ready, 0, False)


async def test_a_pods_counters_and_health_as_its_image_says(http: Dialer) -> None:
    clock = Clock()
    port = free_port()
    async with Simulator(clock=clock, seed=3) as sim:
        await sim.add_pod("bad", "127.0.0.1", port, "venue-service:v2-bad")
        clock.now += 500  # 10,000 synthetic requests at 20/s
        sample = await read_pod(http, target("bad"), 2.0, on(port))
    assert sample.reachable and sample.health_ok
    assert sample.requests == pytest.approx(10_000, abs=1)
    assert 0.10 < sample.errors / sample.requests < 0.14
    assert sample.buckets[float("inf")] == pytest.approx(sample.requests)


async def test_unreachable_refused_and_not_ready_pods(http: Dialer, serve: object) -> None:
    refused = await read_pod(http, target("gone"), 1.0, on(free_port()))
    assert not refused.reachable and refused.health_ok is False
    not_ready = await read_pod(http, target("starting", ready=False), 1.0, on(free_port()))
    assert not not_ready.reachable and not_ready.health_ok is None  # not probed at all


async def test_one_hung_pod_delays_none_of_the_others(http: Dialer, serve: object) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response()

    handler: Handler = hang
    url = await serve(handler)  # type: ignore[operator]
    hung_port = int(url.rsplit(":", 1)[1])
    started = time.monotonic()
    pods = [target("hung"), target("refused", "127.0.0.2")]
    samples = await read_pods(pods, 0.5, on(hung_port))
    assert time.monotonic() - started < 2.0
    assert [s.reachable for s in samples] == [False, False]
    assert [s.health_ok for s in samples] == [False, False]


def test_counters_sum_routes_and_take_5xx_only() -> None:
    text = "\n".join([
        '# TYPE http_requests_total counter',
        'http_requests_total{route="/a",status_code="200"} 90',
        'http_requests_total{route="/a",status_code="503"} 4',
        'http_requests_total{route="/b",status_code="500"} 6',
        'http_requests_total{route="/b",status_code="429"} 10',
        '# TYPE http_request_duration_seconds histogram',
        'http_request_duration_seconds_bucket{route="/a",le="0.5"} 50',
        'http_request_duration_seconds_bucket{route="/a",le="+Inf"} 94',
        'http_request_duration_seconds_bucket{route="/b",le="0.5"} 10',
        'http_request_duration_seconds_bucket{route="/b",le="+Inf"} 16',
        'http_request_duration_seconds_sum{route="/a"} 3',
        'http_request_duration_seconds_count{route="/a"} 94',
    ]) + "\n"  # fmt: skip
    requests, errors, buckets, tenants = counters(text)
    assert (requests, errors, tenants) == (110, 10, {})
    assert buckets == {0.5: 60, float("inf"): 110}


async def test_a_pod_on_https_at_its_own_port_and_paths_is_read(tmp_path: Path) -> None:
    """`rolloutGuard.pods`: https (the pod's certificate unverifiable on its IP), a port and
    paths of the spec's; the runbook's defaults reach nothing there."""
    cert, key = self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    clock, port = Clock(), free_port()
    async with Simulator(clock=clock, seed=3, pod_tls=server, pod_path_prefix="/internal") as sim:
        await sim.add_pod("p", "127.0.0.1", port, "venue-service:v2")
        clock.now += 50
        spec = on(port, scheme="https", metricsPath="/internal/metrics",
                  healthPath="/internal/health/full")  # fmt: skip
        (read,) = await read_pods([target("p")], 2.0, spec)
        (plain,) = await read_pods([target("p")], 2.0, on(port))
        checked = await read_pod(Dialer(), target("p"), 2.0, spec)  # verifying: refused
    assert read.reachable and read.health_ok and read.requests == pytest.approx(1000, abs=1)
    assert not plain.reachable and not checked.reachable


@pytest.mark.parametrize(
    "path", ["metrics", "/a/../metrics", "/./metrics", "/metrics?x=1", "/m%2e", "/a//b", "/"]
)
def test_a_pod_path_must_be_plain(path: str) -> None:
    with pytest.raises(ValidationError):
        PodEndpoint.model_validate({"metricsPath": path})
