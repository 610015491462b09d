"""The venue-service simulator, over real loopback HTTP: health shapes, faults, metrics, control."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.waiting import eventually
from venue_lab.simulator import (
    FAULT_FIELDS,
    HEALTHY,
    DeploymentFollower,
    FaultError,
    Faults,
    FollowTarget,
    ServiceBehaviour,
    SimulatedService,
    Simulator,
    faults_for_image,
    image_tag,
    kubernetes_image_reader,
    parse_overrides,
)
from venue_lab.simulator.behaviour import BUCKETS, TENANTS
from venue_lab.simulator.behaviour import ROUTES as ROUTES_

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class FakeClock:
    """Synthetic traffic follows this clock, so thousands of requests take no wall time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    async with Simulator(clock=clock, seed=7) as simulator:
        yield simulator


@pytest.fixture
async def service(sim: Simulator) -> SimulatedService:
    return await sim.add_service("venue")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


async def scrape(client: httpx.AsyncClient, svc: SimulatedService) -> Samples:
    return await scrape_url(client, f"{svc.url}/metrics")


async def scrape_url(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and wanted <= lbl)


def delta(after: Samples, before: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def share(samples: Samples, code_prefix: str) -> float:
    requests = {k: v for k, v in samples.items() if k[0] == "http_requests_total"}
    failed = sum(
        v for (_, lbl), v in requests.items() if dict(lbl)["status_code"][0] == code_prefix
    )
    return failed / sum(requests.values())


def p99(samples: Samples) -> float:
    """histogram_quantile(0.99, sum by (le) (...)), as Prometheus interpolates it."""
    bounds = [*BUCKETS, math.inf]
    counts = [
        total(
            samples, "http_request_duration_seconds_bucket", le=str(b) if b != math.inf else "+Inf"
        )
        for b in bounds
    ]
    rank = 0.99 * counts[-1]
    for i, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        if count >= rank:
            if bound == math.inf:
                return bounds[i - 1]
            lower, below = (bounds[i - 1], counts[i - 1]) if i else (0.0, 0.0)
            return lower + (bound - lower) * (rank - below) / (count - below)
    raise AssertionError("empty histogram")


async def traffic_with(
    client: httpx.AsyncClient, svc: SimulatedService, clock: FakeClock, seconds: float = 250.0
) -> Samples:
    """What the service served over `seconds` of synthetic traffic (20 req/s) from now."""
    before = await scrape(client, svc)
    clock.advance(seconds)
    return delta(await scrape(client, svc), before)


def gauge(samples: Samples, name: str) -> float:
    return samples[(name, frozenset())]


# -- health shapes -----------------------------------------------------------------------


async def test_healthy_service_answers_the_runbooks_shapes(
    service: SimulatedService, client: httpx.AsyncClient
) -> None:
    health = await client.get(f"{service.url}/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    full = await client.get(f"{service.url}/health/full")
    assert full.status_code == 200
    assert full.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    families = {
        f.name: f.type
        for f in text_string_to_metric_families((await client.get(f"{service.url}/metrics")).text)
    }
    assert families == {
        "http_requests": "counter",
        "http_request_duration_seconds": "histogram",
        "rate_limit_exceeded": "counter",
        "db_pool_size": "gauge",
        "db_pool_in_use": "gauge",
        "db_pool_pending": "gauge",
        "process_resident_memory_bytes": "gauge",
        "venue_memory_limit_bytes": "gauge",
        "venue_migrations_pending": "gauge",
    }


async def test_healthy_baseline_stays_under_every_warning_threshold(
    service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    served = await traffic_with(client, service, clock, seconds=300)
    assert total(served, "http_requests_total") == 6000  # 20 req/s
    assert share(served, "5") < 0.005
    assert share(served, "4") == 0
    assert 0.1 < p99(served) < 0.25
    now = await scrape(client, service)
    assert 0.15 <= gauge(now, "db_pool_in_use") / gauge(now, "db_pool_size") <= 0.45
    assert gauge(now, "db_pool_pending") == 0
    memory = gauge(now, "process_resident_memory_bytes") / gauge(now, "venue_memory_limit_bytes")
    assert 0.35 < memory < 0.45
    assert gauge(now, "venue_migrations_pending") == 0
    assert {lbl for (n, lbl) in now if n == "rate_limit_exceeded_total"} == {
        frozenset({("tenant", t)}) for t in TENANTS
    }


# -- each fault's observable effect ---------------------------------------------------------


async def test_error_ratio_shows_as_that_share_of_500s(
    service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await service.set_faults(error_ratio=0.12)
    served = await traffic_with(client, service, clock)
    assert total(served, "http_requests_total") == 5000
    assert 0.10 <= share(served, "5") <= 0.14
    assert total(served, "http_requests_total", status_code="503") == 0
    assert (await client.get(f"{service.url}/health")).status_code == 200


@pytest.mark.parametrize(("added_ms", "low", "high"), [(600, 0.5, 2.0), (2500, 2.0, 5.0)])
async def test_added_latency_moves_the_p99(
    service: SimulatedService,
    client: httpx.AsyncClient,
    clock: FakeClock,
    added_ms: float,
    low: float,
    high: float,
) -> None:
    await service.set_faults(added_latency_ms=added_ms)
    assert low < p99(await traffic_with(client, service, clock)) <= high


async def test_pool_saturation_fills_the_pool_and_slows_requests(
    service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await service.set_faults(pool_saturation=True)
    served = await traffic_with(client, service, clock)
    assert p99(served) > 0.5
    now = await scrape(client, service)
    assert gauge(now, "db_pool_in_use") == gauge(now, "db_pool_size")
    assert gauge(now, "db_pool_pending") > 0


async def test_memory_pressure_goes_over_85_percent_of_the_limit(
    service: SimulatedService, client: httpx.AsyncClient
) -> None:
    await service.set_faults(memory_pressure=True)
    now = await scrape(client, service)
    assert gauge(now, "process_resident_memory_bytes") > 0.85 * gauge(
        now, "venue_memory_limit_bytes"
    )


async def test_database_down_fails_health_and_most_requests(
    service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await service.set_faults(database_down=True)
    health = await client.get(f"{service.url}/health")
    assert health.status_code == 503 and health.json()["status"] == "error"
    full = await client.get(f"{service.url}/health/full")
    assert full.status_code == 503
    assert full.json() == {"status": "error", "checks": {"database": "error", "redis": "ok"}}
    served = await traffic_with(client, service, clock)
    assert share(served, "5") > 0.9
    assert total(served, "http_requests_total", status_code="503") > 0


async def test_redis_down_fails_the_full_check_only(
    service: SimulatedService, client: httpx.AsyncClient
) -> None:
    await service.set_faults(redis_down=True)
    assert (await client.get(f"{service.url}/health")).status_code == 200
    full = await client.get(f"{service.url}/health/full")
    assert full.status_code == 503
    assert full.json()["checks"] == {"database": "ok", "redis": "error"}


async def test_pending_migrations_make_the_service_not_ready(
    service: SimulatedService, client: httpx.AsyncClient
) -> None:
    await service.set_faults(migrations_pending=True)
    assert (await client.get(f"{service.url}/health")).status_code == 503
    full = await client.get(f"{service.url}/health/full")
    assert full.status_code == 503
    assert full.json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "pending"}
    assert gauge(await scrape(client, service), "venue_migrations_pending") == 1


async def test_rate_limited_tenant_gets_the_429s(
    service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await service.set_faults(rate_limit_tenant="tenant-c")
    served = await traffic_with(client, service, clock)
    rejected = total(served, "http_requests_total", status_code="429")
    assert rejected == total(served, "http_requests_total", status_code="429", tenant="tenant-c")
    assert rejected > 1000
    assert total(served, "rate_limit_exceeded_total", tenant="tenant-c") == rejected
    assert total(served, "rate_limit_exceeded_total", tenant="tenant-a") == 0
    assert share(served, "5") < 0.01


@pytest.mark.parametrize(
    ("fault", "size"), [("malformed_health", None), ("junk_health", 10 * 1024 * 1024)]
)
async def test_broken_health_is_200_but_not_json(
    service: SimulatedService, client: httpx.AsyncClient, fault: str, size: int | None
) -> None:
    await service.set_faults(**{fault: True})
    for path in ("/health", "/health/full"):
        response = await client.get(f"{service.url}{path}")
        assert response.status_code == 200
        assert size is None or len(response.content) == size
        with pytest.raises(ValueError):  # JSONDecodeError, or UnicodeDecodeError for junk
            json.loads(response.content)


async def test_slow_health_outlasts_a_probe_timeout(
    service: SimulatedService, client: httpx.AsyncClient
) -> None:
    await service.set_faults(slow_health=True)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"{service.url}/health", timeout=1.0)
    assert (await client.get(f"{service.url}/metrics")).status_code == 200


async def refused(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2.0) as fresh:
        try:
            await fresh.get(url)
        except httpx.ConnectError:
            return True
    return False


async def test_not_starting_refuses_connections_then_recovers_on_the_same_port(
    sim: Simulator, service: SimulatedService, client: httpx.AsyncClient
) -> None:
    port, health = service.port, f"{service.url}/health"
    # Through the service's own admin API: it answers, then closes its socket.
    answer = await client.put(f"{service.url}/admin/faults", json={"not_starting": True})
    assert answer.status_code == 200 and answer.json()["not_starting"] is True
    await eventually("connections refused", lambda: refused(health))
    listed = (await client.get(f"{sim.control_url}/services")).json()
    assert listed["venue"]["listening"] is False
    cleared = await client.delete(f"{sim.control_url}/services/venue/faults")
    assert cleared.status_code == 200
    assert service.port == port
    assert (await client.get(health)).status_code == 200


async def test_not_starting_serves_no_traffic(
    service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    before = await scrape(client, service)
    await service.set_faults(not_starting=True)
    assert await refused(f"{service.url}/metrics")
    clock.advance(100)
    await service.clear_faults()
    assert total(delta(await scrape(client, service), before), "http_requests_total") == 0


# -- the admin API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error_ratio": 0.2, "bogus": True}, "unknown fault field(s): bogus"),
        ({"error_ratio": "high"}, "error_ratio must be a number in [0, 1]"),
        ({"error_ratio": 1.5}, "error_ratio must be a number in [0, 1]"),
        ({"error_ratio": True}, "error_ratio must be a number in [0, 1]"),
        ({"added_latency_ms": -1}, "added_latency_ms must be a number"),
        ({"database_down": 1, "redis_down": "yes"}, "database_down must be true or false"),
        ({"rate_limit_tenant": 'a"b'}, "rate_limit_tenant must be null or a tenant name"),
        ([{"database_down": True}], "faults must be a JSON object"),
        ("{not json", "body is not JSON"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_bad_fault_input_is_400_and_changes_nothing(
    sim: Simulator,
    service: SimulatedService,
    client: httpx.AsyncClient,
    method: str,
    body: object,
    message: str,
) -> None:
    await service.set_faults(error_ratio=0.05)
    content = body if isinstance(body, str) else json.dumps(body)
    for url in (f"{service.url}/admin/faults", f"{sim.control_url}/services/venue/faults"):
        answer = await client.request(method, url, content=content)
        assert answer.status_code == 400
        assert message in answer.json()["error"]
    assert service.faults == Faults(error_ratio=0.05)


async def test_put_replaces_patch_merges_delete_clears(
    service: SimulatedService, client: httpx.AsyncClient
) -> None:
    url = f"{service.url}/admin/faults"
    await client.put(url, json={"error_ratio": 0.2, "redis_down": True})
    await client.put(url, json={"memory_pressure": True})
    assert service.faults == Faults(memory_pressure=True)
    patched = await client.patch(url, json={"rate_limit_tenant": "tenant-b"})
    assert patched.json() == {
        **HEALTHY.to_json(),
        "memory_pressure": True,
        "rate_limit_tenant": "tenant-b",
    }
    assert (await client.get(url)).json() == patched.json()
    assert (await client.delete(url)).json() == HEALTHY.to_json()
    assert list(HEALTHY.to_json()) == list(FAULT_FIELDS)


async def test_python_api_validates_too(service: SimulatedService) -> None:
    await service.set_faults(redis_down=True)
    with pytest.raises(FaultError, match="unknown fault field"):
        await service.patch_faults(disk_full=True)
    with pytest.raises(FaultError, match="must be true or false"):
        await service.set_faults(database_down="yes")
    assert service.faults == Faults(redis_down=True)


# -- the control API: many services in one process ------------------------------------------


async def test_control_api_lists_and_adds_services(
    sim: Simulator, service: SimulatedService, client: httpx.AsyncClient
) -> None:
    added = await client.post(
        f"{sim.control_url}/services", json={"name": "late", "faults": {"redis_down": True}}
    )
    assert added.status_code == 201
    late = sim.service("late")
    assert added.json()["port"] == late.port != service.port
    assert (await client.get(f"{late.url}/health/full")).json()["checks"]["redis"] == "error"
    listed = (await client.get(f"{sim.control_url}/services")).json()
    assert set(listed) == {"venue", "late"}
    assert listed["late"]["faults"]["redis_down"] is True
    for bad in ({"name": "venue"}, {"name": "Bad_Name"}, {"name": "x", "rate": "fast"}, {}):
        assert (await client.post(f"{sim.control_url}/services", json=bad)).status_code == 400
    assert (await client.get(f"{sim.control_url}/services/nope/faults")).status_code == 404


async def test_the_fleet_exposition_is_every_listening_service_labelled(
    sim: Simulator, service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    other = await sim.add_service("other", faults=HEALTHY.with_overrides({"error_ratio": 0.5}))
    clock.advance(60)
    gauges = {"db_pool_in_use", "db_pool_pending", "process_resident_memory_bytes"}  # jitter

    def counters(samples: Samples) -> Samples:
        return {key: value for key, value in samples.items() if key[0] not in gauges}

    own = {svc.name: counters(await scrape(client, svc)) for svc in (service, other)}
    fleet = counters(await scrape_url(client, f"{sim.control_url}/metrics"))  # same clock
    for name, samples in own.items():
        labelled = {(n, lbl | {("service", name)}): v for (n, lbl), v in samples.items()}
        assert {k: v for k, v in fleet.items() if ("service", name) in k[1]} == labelled
    assert total(fleet, "http_requests_total", service="other") > 0
    assert len(fleet) == sum(len(samples) for samples in own.values())

    parts = [await scrape_url(client, f"{sim.control_url}/metrics?part={i}&of=2") for i in (0, 1)]
    assert [{dict(lbl)["service"] for _, lbl in p} for p in parts] == [{"venue"}, {"other"}]
    for bad in ("part=2&of=2", "part=-1&of=2", "part=x&of=2", "part=0&of=0"):
        assert (await client.get(f"{sim.control_url}/metrics?{bad}")).status_code == 400

    await other.set_faults(not_starting=True)  # its own scrape would fail: not in the fleet's
    fleet = await scrape_url(client, f"{sim.control_url}/metrics")
    assert {dict(lbl)["service"] for _, lbl in fleet} == {"venue"}


async def test_two_hundred_services_in_one_process(client: httpx.AsyncClient) -> None:
    async with Simulator() as many:
        services = [await many.add_service(f"venue-{i:03d}") for i in range(200)]
        assert len({svc.port for svc in services}) == 200
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
            answers = await asyncio.gather(*(http.get(f"{s.url}/health") for s in services))
            metrics = await asyncio.gather(*(http.get(f"{s.url}/metrics") for s in services[:20]))
        assert {a.status_code for a in answers} == {200}
        assert {m.status_code for m in metrics} == {200}
        info = many.ready_info()
        assert len(info["services"]) == 200  # type: ignore[arg-type]


class FakeApiServer:
    """Serves Deployments by (namespace, name) like the API server, for the follow mode."""

    def __init__(self) -> None:
        self.images: dict[tuple[str, str], str] = {}
        self.port = 0

    async def deployment(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        if key not in self.images:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        container = {"name": "venue-service", "image": self.images[key]}
        return web.json_response(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": key[1], "namespace": key[0]},
                "spec": {
                    "selector": {"matchLabels": {"app": key[1]}},
                    "template": {"spec": {"containers": [container]}},
                },
            }
        )

    def kubeconfig(self, path: Path) -> Path:
        cluster = {"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}
        context = {"name": "fake", "context": {"cluster": "fake", "user": "fake"}}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [context],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))  # JSON is YAML
        return path


@pytest.fixture
async def api_server() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer()
    app = web.Application()
    app.add_routes(
        [web.get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}", fake.deployment)]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = site.port
    yield fake
    await runner.cleanup()


async def test_kubernetes_reader_reads_the_first_containers_image(
    api_server: FakeApiServer, tmp_path: Path
) -> None:
    api_server.images[("venue", "venue-service")] = "venue-service:v1.2.4-slow"
    read_image = kubernetes_image_reader(str(api_server.kubeconfig(tmp_path / "kubeconfig")))
    assert await asyncio.to_thread(read_image, "venue", "venue-service") == (
        "venue-service:v1.2.4-slow"
    )
    with pytest.raises(Exception, match="Not Found"):
        await asyncio.to_thread(read_image, "venue", "missing")


@pytest.fixture
def ready_file(tmp_path: Path) -> Path:
    return tmp_path / "ready.json"


@pytest.fixture
def cli(
    ready_file: Path, api_server: FakeApiServer, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    api_server.images[("venue", "venue-service")] = "venue-service:v1.3.0-migrate"
    kubeconfig = api_server.kubeconfig(tmp_path / "kubeconfig")
    argv = [sys.executable, "-m", "venue_lab.simulator", "--services", "2", "--control-port", "0"]
    argv += ["--follow", "venue/venue-service=followed", "--kubeconfig", str(kubeconfig)]
    with (tmp_path / "simulator.log").open("wb") as log:
        proc = subprocess.Popen(
            [*argv, "--poll-interval", "0.05", "--ready-file", str(ready_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_cli_serves_follows_a_deployment_and_cleans_up(
    cli: subprocess.Popen[bytes],
    ready_file: Path,
    api_server: FakeApiServer,
    client: httpx.AsyncClient,
) -> None:
    async def ready() -> bool:
        assert cli.poll() is None, (ready_file.parent / "simulator.log").read_text()
        return await asyncio.to_thread(ready_file.exists)

    await eventually("the ready file", ready, within=15)
    info = json.loads(await asyncio.to_thread(ready_file.read_text))
    assert info["pid"] == cli.pid
    ports = {s["name"]: s["port"] for s in info["services"]}
    assert list(ports) == ["venue-000", "venue-001", "followed"]
    control = f"http://127.0.0.1:{info['control_port']}"
    patched = await client.patch(f"{control}/services/venue-001/faults", json={"redis_down": True})
    assert patched.status_code == 200
    statuses = {
        name: (await client.get(f"http://127.0.0.1:{port}/health/full")).status_code
        for name, port in ports.items()
    }
    assert statuses == {"venue-000": 200, "venue-001": 503, "followed": 503}  # -migrate

    api_server.images[("venue", "venue-service")] = "venue-service:v1.2.3"  # rollout undo

    async def healed() -> bool:
        url = f"http://127.0.0.1:{ports['followed']}/health/full"
        return (await client.get(url)).status_code == 200

    await eventually("the followed service to heal", healed)
    cli.terminate()
    assert await asyncio.to_thread(cli.wait, 10) == 0
    assert not await asyncio.to_thread(ready_file.exists)


# -- pure parts: behaviour, image tags -------------------------------------------------------


def test_behaviour_is_deterministic_given_the_seed() -> None:
    def run(seed: str) -> str:
        behaviour = ServiceBehaviour(rate=20, seed=seed, now=0.0)
        behaviour.set_faults(Faults(error_ratio=0.3, pool_saturation=True), now=10.0)
        return behaviour.metrics_text(now=70.0)

    assert run("1:venue") == run("1:venue") != run("2:venue")


def test_a_long_catch_up_is_bounded_but_counts_every_request() -> None:
    behaviour = ServiceBehaviour(rate=20, seed=0, now=0.0)
    started = time.monotonic()
    behaviour.advance(3600.0)
    assert time.monotonic() - started < 2.0
    assert sum(behaviour.requests.values()) == pytest.approx(72_000)


def test_fluid_traffic_grows_each_series_by_what_drawn_traffic_averages() -> None:
    """The bench's `--fluid-traffic`: the same series, each at the drawn traffic's long-run
    share, with no noise; a fault draws requests again (and counts on from there)."""
    drawn = ServiceBehaviour(200.0, "drawn", 0.0)
    fluid = ServiceBehaviour(200.0, "fluid", 0.0, fluid=True)
    for t in range(1, 301):
        drawn.advance(float(t))
        fluid.advance(float(t))
    assert fluid.requests.keys() == drawn.requests.keys()
    assert sum(fluid.requests.values()) == pytest.approx(60_000)
    for key, value in fluid.requests.items():  # within 4 standard deviations of the draws
        assert drawn.requests[key] == pytest.approx(value, abs=4 * math.sqrt(value) + 1)
    for route in ROUTES_:
        assert sum(fluid.buckets[route]) == pytest.approx(30_000)
        for bucket, value in enumerate(fluid.buckets[route]):
            assert drawn.buckets[route][bucket] == pytest.approx(
                value, abs=4 * math.sqrt(value) + 1
            )
        assert fluid.latency_sum[route] == pytest.approx(drawn.latency_sum[route], rel=0.02)
    # noise-free: a second's share of 500s is the baseline exactly
    failed = sum(v for (_, code, _), v in fluid.requests.items() if code == "500")
    fluid.advance(301.0)
    failed_then = sum(v for (_, code, _), v in fluid.requests.items() if code == "500")
    assert failed_then - failed == pytest.approx(200 * 0.001)
    fluid.set_faults(Faults(error_ratio=0.5), now=301.0)
    fluid.advance(361.0)
    late = sum(v for (_, code, _), v in fluid.requests.items() if code == "500") - failed_then
    assert late == pytest.approx(60 * 200 * 0.5, rel=0.05)


@pytest.mark.parametrize(
    ("image", "faults"),
    [
        ("gcr.io/tickettoken/venue-service:v1.2.4-bad", Faults(error_ratio=0.12)),
        ("gcr.io/tickettoken/venue-service:v1.2.4-slow", Faults(added_latency_ms=2500)),
        ("venue-service:v2-crash", Faults(not_starting=True)),
        ("localhost:5000/venue-service:v1.3.0-migrate", Faults(migrations_pending=True)),
        ("venue-service:v1.2.5-leak@sha256:abc", Faults(memory_pressure=True)),
        ("gcr.io/tickettoken/venue-service:v1.2.3", HEALTHY),
        ("localhost:5000-bad/venue-service", HEALTHY),
        ("venue-service:v1-bad-but-fixed", HEALTHY),
    ],
)
def test_image_tag_decides_the_faults(image: str, faults: Faults) -> None:
    assert faults_for_image(image) == faults


def test_one_tenant_of_a_tenth_failing_is_three_percent_overall() -> None:
    """The rollout guard's per-tenant shape: `-tenant-e` with tenant-e a tenth of the traffic
    (a pod's `--pod-faults`, over its image's faults)."""
    faults = faults_for_image("venue:v2-tenant-e").with_overrides(
        {"tenant_traffic": "tenant-a=9,tenant-b=9,tenant-c=9,tenant-d=9,tenant-e=4"}
    )
    behaviour = ServiceBehaviour(200.0, "tenant", 0.0, faults)
    behaviour.advance(300.0)
    served = {t: sum(v for (_, _, tenant), v in behaviour.requests.items() if tenant == t)
              for t in TENANTS}  # fmt: skip
    failed = {t: sum(v for (_, code, tenant), v in behaviour.requests.items()
                     if tenant == t and code == "500") for t in TENANTS}  # fmt: skip
    total = sum(served.values())
    assert served["tenant-e"] / total == pytest.approx(0.10, abs=0.01)
    assert failed["tenant-e"] / served["tenant-e"] == pytest.approx(0.30, abs=0.02)
    assert sum(failed.values()) / total == pytest.approx(0.031, abs=0.005)


def test_noisy_bursts_average_under_one_percent_and_warm_up_slowness_passes() -> None:
    noisy = ServiceBehaviour(200.0, "noisy", 0.0, faults_for_image("venue:v2-noisy"))
    per_second = []
    for t in range(1, 101):
        before = sum(v for (_, code, _), v in noisy.requests.items() if code == "500")
        noisy.advance(float(t))
        after = sum(v for (_, code, _), v in noisy.requests.items() if code == "500")
        per_second.append((after - before) / 200)
    served = sum(noisy.requests.values())
    failed = sum(v for (_, code, _), v in noisy.requests.items() if code == "500")
    assert 0.005 < failed / served < 0.011
    assert max(per_second) > 0.04  # the bursts
    warm = ServiceBehaviour(200.0, "warm", 0.0, faults_for_image("venue:v2-warmup"))
    warm.advance(5.0)
    slow_early = sum(c for route in ROUTES_ for c in warm.buckets[route][-4:])
    warm.advance(60.0)
    slow_total = sum(c for route in ROUTES_ for c in warm.buckets[route][-4:])
    assert slow_early == pytest.approx(1000, rel=0.01) and slow_total == slow_early


def test_image_tag_ignores_registry_ports_and_digests() -> None:
    assert image_tag("localhost:5000/venue:v1-bad") == "v1-bad"
    assert image_tag("localhost:5000/venue") == ""
    assert image_tag("venue:v1@sha256:abc") == "v1"


async def test_admin_faults_override_the_image_field_by_field(service: SimulatedService) -> None:
    await service.set_image("venue-service:v1.2.4-bad")
    assert service.faults == Faults(error_ratio=0.12)
    await service.patch_faults(error_ratio=0.0, redis_down=True)
    assert service.faults == Faults(redis_down=True)
    await service.clear_faults()
    assert service.faults == Faults(error_ratio=0.12)
    await service.set_image("venue-service:v1.2.3")
    assert service.faults == HEALTHY


# -- follow-a-Deployment plumbing (a fake reader stands in for the API server) --------------


def test_follow_target_parsing() -> None:
    assert FollowTarget.parse("venue/venue-service") == FollowTarget(
        "venue", "venue-service", "venue-service"
    )
    assert FollowTarget.parse("ns/dep=svc-1") == FollowTarget("ns", "dep", "svc-1")
    for bad in ("venue-service", "a/b/c", "ns/=svc", ""):
        with pytest.raises(ValueError, match="NAMESPACE/DEPLOYMENT"):
            FollowTarget.parse(bad)


async def test_follower_applies_rollouts_and_survives_api_errors(
    sim: Simulator, service: SimulatedService, client: httpx.AsyncClient
) -> None:
    images = {("venue", "venue-service"): "venue-service:v1.2.3"}
    failing = False

    def read_image(namespace: str, deployment: str) -> str:
        if failing:
            raise ConnectionError("api server unreachable")
        return images[(namespace, deployment)]

    target = FollowTarget.parse("venue/venue-service=venue")
    follower = DeploymentFollower(sim, [target], read_image, interval=0.01, max_backoff=0.05)
    await follower.poll_once()
    assert service.faults == HEALTHY

    images[("venue", "venue-service")] = "venue-service:v1.2.4-crash"  # kubectl set image
    await follower.poll_once()
    assert service.faults.not_starting and await refused(f"{service.url}/health")

    failing = True
    await follower.poll_once()  # logged and backed off, not raised
    failing = False
    images[("venue", "venue-service")] = "venue-service:v1.2.3"  # kubectl rollout undo
    running = asyncio.create_task(follower.run())
    try:

        async def healed() -> bool:
            return service.listening and not service.faults.not_starting

        await eventually("the rollback to heal the service", healed)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert (await client.get(f"{service.url}/health")).status_code == 200


def test_tenant_traffic_and_error_weights_shape_each_tenants_requests() -> None:
    behaviour = ServiceBehaviour(rate=100, seed=0, now=0.0)
    faults = Faults(error_ratio=0.1, tenant_traffic="a=5,b=2,c=3", tenant_error_weight="b=4")
    behaviour.set_faults(faults, now=0.0)
    behaviour.advance(100.0)

    def served(tenant: str, errors: bool = False) -> float:
        return sum(v for (_, code, t), v in behaviour.requests.items()
                   if t == tenant and (code == "500" or not errors))  # fmt: skip

    assert served("a") == pytest.approx(5000, rel=0.05) and served("d") == 0
    assert served("b", errors=True) / served("b") == pytest.approx(0.4, abs=0.04)
    assert served("a", errors=True) / served("a") == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("bad", ["a", "a=x", "=1", "a=-1", "a b=1", "a=1e9", 3])
def test_tenant_weights_are_validated(bad: object) -> None:
    with pytest.raises(FaultError):
        parse_overrides({"tenant_traffic": bad})


async def test_follower_serves_each_pod_on_its_own_ip_as_its_image_says(
    sim: Simulator, service: SimulatedService, client: httpx.AsyncClient, clock: FakeClock,
    tmp_path: Path,
) -> None:  # fmt: skip
    from venue_lab.pod_network import PodNetwork
    from venue_lab.simulator.follow import PodView

    network = PodNetwork.allocate()
    port = 3002
    old = PodView("venue-a", f"127.{network.octet}.0.2", "venue-service:v1")
    bad = PodView("venue-b", f"127.{network.octet}.0.3", "venue-service:v2-bad")
    pods = [old]
    target = FollowTarget.parse("venue/venue-service=venue")
    follower = DeploymentFollower(sim, [target], lambda ns, d: "venue-service:v1")
    listed = tmp_path / "pods.json"  # for Prometheus' file discovery
    follower.follow_in_bulk(
        lambda: {("venue", "venue-service"): ("venue-service:v1", pods)}, port, listed
    )
    try:
        await follower.poll_once()
        pods.append(bad)
        await follower.poll_once()
        assert json.loads(listed.read_text()) == [
            {"targets": [f"{p.ip}:{port}"],
             "labels": {"namespace": "venue", "service": "venue", "pod": p.name}}
            for p in (old, bad)
        ]  # fmt: skip
        clock.advance(100)
        errors = {}
        for pod in (old, bad):
            text = (await client.get(f"http://{pod.ip}:{port}/metrics")).text
            samples = {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            errors[pod.name] = share(samples, "5")
        assert errors["venue-a"] < 0.01 and 0.08 < errors["venue-b"] < 0.16
        assert (await client.get(f"{service.url}/health")).status_code == 200  # still served

        pods.remove(old)  # the ReplicaSet scaled it down
        await follower.poll_once()
        assert await refused(f"http://{old.ip}:{port}/health")
        assert set(sim.pods) == {"venue/venue-b"}
        assert [g["labels"]["pod"] for g in json.loads(listed.read_text())] == ["venue-b"]
        follower.stop_listing()
        assert not listed.exists()
    finally:
        await sim.stop()
        network.release()
