"""The Simulator: many simulated services in one asyncio loop, and the process-wide control API.

The control API (its own port, 127.0.0.1 only) lists the services, changes their faults,
even while a service refuses connections, and adds services at run time.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Mapping
from types import TracebackType

import structlog
from aiohttp import web

from venue_lab.simulator.behaviour import ServiceBehaviour
from venue_lab.simulator.faults import (
    HEALTHY,
    FaultError,
    FaultOverrides,
    Faults,
    parse_overrides,
)
from venue_lab.simulator.service import (
    HOST,
    SHUTDOWN_TIMEOUT_S,
    Clock,
    SimulatedService,
    faults_request,
)

log = structlog.get_logger(__name__)

DEFAULT_RATE = 20.0
DEFAULT_HANG_S = 30.0
FLEET_METRICS_BATCH = 100  # services rendered between two writes of the fleet's /metrics
_SERVICE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?")


class Simulator:
    """`async with Simulator() as sim: svc = await sim.add_service("venue")`; `sim.control_url`."""

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        seed: int = 0,
        control_port: int = 0,
        slow_health_seconds: float = DEFAULT_HANG_S,
        clock: Clock = time.monotonic,
        pod_tls: ssl.SSLContext | None = None,
        pod_path_prefix: str = "",
        pod_overrides: FaultOverrides | None = None,
        fluid_traffic: bool = False,
    ) -> None:
        self.rate = rate
        self.fluid_traffic = fluid_traffic  # healthy counters grow by expectation (behaviour.py)
        # how every pod's own endpoint serves: https, a path prefix, faults over its image's
        self.pod_tls = pod_tls
        self.pod_path_prefix = pod_path_prefix
        self.pod_overrides: FaultOverrides = dict(pod_overrides or {})
        self.seed = seed
        self.control_port = control_port
        self.slow_health_seconds = slow_health_seconds
        self.clock = clock
        self._services: dict[str, SimulatedService] = {}
        self._pods: dict[str, SimulatedService] = {}  # pod name -> its own endpoint
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Simulator:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def control_url(self) -> str:
        return f"http://{HOST}:{self.control_port}"

    @property
    def services(self) -> Mapping[str, SimulatedService]:
        return self._services

    def service(self, name: str) -> SimulatedService:
        return self._services[name]

    async def start(self) -> None:
        """Open the control port."""
        app = web.Application()
        app[SIMULATOR] = self
        app.add_routes(CONTROL_ROUTES)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, HOST, self.control_port)
        await site.start()
        self.control_port = site.port
        log.info("simulator control listening", port=self.control_port)

    async def add_service(
        self, name: str, port: int = 0, *, rate: float | None = None, faults: Faults = HEALTHY
    ) -> SimulatedService:
        """Start one more service (port 0: a free one); ValueError on a bad or taken name."""
        if not _SERVICE_NAME.fullmatch(name):
            raise ValueError(f"service name must be a DNS label like 'venue-1', got {name!r}")
        if name in self._services:
            raise ValueError(f"service {name!r} already exists")
        if not (port == 0 or 1024 <= port <= 65535):
            raise ValueError(f"port must be 0 or in 1024..65535, got {port!r}")
        behaviour = ServiceBehaviour(
            self.rate if rate is None else rate, f"{self.seed}:{name}", self.clock(), faults,
            fluid=self.fluid_traffic,
        )  # fmt: skip
        service = SimulatedService(
            name, port, behaviour, self.clock, self.slow_health_seconds, faults.active()
        )
        self._services[name] = service
        try:
            await service.start()
        except BaseException:
            del self._services[name]
            await service.stop()
            raise
        return service

    @property
    def pods(self) -> Mapping[str, SimulatedService]:
        return self._pods

    async def add_pod(self, name: str, ip: str, port: int, image: str) -> SimulatedService:
        """A pod's own endpoint on its IP, with its own counters, behaving as its image says."""
        behaviour = ServiceBehaviour(
            self.rate, f"{self.seed}:pod:{name}", self.clock(), fluid=self.fluid_traffic
        )
        pod = SimulatedService(
            name, port, behaviour, self.clock, self.slow_health_seconds, self.pod_overrides,
            host=ip, tls=self.pod_tls, path_prefix=self.pod_path_prefix,
        )  # fmt: skip
        try:
            await pod.set_image(image)
            await pod.start()
        except BaseException:
            await pod.stop()
            raise
        self._pods[name] = pod
        return pod

    async def remove_pod(self, name: str) -> None:
        pod = self._pods.pop(name, None)
        if pod is not None:
            await pod.stop()

    async def stop(self) -> None:
        """Close every service, every pod endpoint and the control port."""
        endpoints = [*self._services.values(), *self._pods.values()]
        await asyncio.gather(*(endpoint.stop() for endpoint in endpoints))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ready_info(self) -> dict[str, object]:
        """What the CLI writes to its ready file."""
        return {
            "control_port": self.control_port,
            "control_url": self.control_url,
            "services": [
                {"name": name, "port": svc.port, "url": svc.url}
                for name, svc in self._services.items()
            ],
            "pods": [{"name": name, "url": pod.url} for name, pod in self._pods.items()],
        }


SIMULATOR = web.AppKey("simulator", Simulator)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _lookup(request: web.Request) -> SimulatedService:
    name = request.match_info["name"]
    try:
        return request.app[SIMULATOR].service(name)
    except KeyError:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no service {name!r}"}), content_type="application/json"
        ) from None


async def list_services(request: web.Request) -> web.Response:
    services = request.app[SIMULATOR].services
    return web.json_response({name: svc.describe() for name, svc in services.items()})


async def get_service(request: web.Request) -> web.Response:
    return web.json_response(_lookup(request).describe())


async def service_faults(request: web.Request) -> web.Response:
    service, body = _lookup(request), await request.read()
    status, answer = await faults_request(service, request.method, body, wait=True)
    return web.json_response(answer, status=status)


async def add_service(request: web.Request) -> web.Response:
    """`POST /services {"name": ..., "port"?: int, "rate"?: number, "faults"?: {...}}`."""
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        return _error(400, f"body is not JSON: {exc}")
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return _error(400, 'body must be a JSON object with a string "name"')
    unknown = sorted(set(body) - {"name", "port", "rate", "faults"})
    port, rate = body.get("port", 0), body.get("rate")
    if unknown:
        return _error(400, f"unknown field(s): {', '.join(unknown)}")
    if isinstance(port, bool) or not isinstance(port, int):
        return _error(400, f"port must be an integer, got {port!r}")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        return _error(400, f"rate must be a number, got {rate!r}")
    try:
        faults = HEALTHY.with_overrides(parse_overrides(body.get("faults", {})))
        service = await request.app[SIMULATOR].add_service(
            body["name"], port, rate=None if rate is None else float(rate), faults=faults
        )
    except (FaultError, ValueError) as exc:
        return _error(400, str(exc))
    except OSError as exc:
        return _error(409, f"cannot listen on port {port}: {exc}")
    return web.json_response({"name": service.name, **service.describe()}, status=201)


async def fleet_metrics(request: web.Request) -> web.StreamResponse:
    """Every listening service's series in one exposition, each labelled `service="NAME"`:
    one scrape target for a whole fleet (bench/scale.py), where one target per service costs
    Prometheus and this process a scrape each. `?part=I&of=K`: the I-th of K parts of the
    services (0-based), a target each, so that no scrape of a large fleet outlasts its
    timeout. Written a batch at a time, so that probes are answered between batches."""
    try:
        part, of = int(request.query.get("part", "0")), int(request.query.get("of", "1"))
    except ValueError:
        return _error(400, "part and of must be integers")
    if not 0 <= part < of:
        return _error(400, f"part must be from 0 to of - 1, got {part} of {of}")
    response = web.StreamResponse(headers={"Content-Type": "text/plain; version=0.0.4"})
    await response.prepare(request)
    services = list(request.app[SIMULATOR].services.values())[part::of]
    services = [s for s in services if s.listening]
    for start in range(0, len(services), FLEET_METRICS_BATCH):
        batch = services[start : start + FLEET_METRICS_BATCH]
        await response.write("".join(s.metrics_text(f'service="{s.name}"') for s in batch).encode())
        await asyncio.sleep(0)  # a write returns without yielding while its buffer has room
    await response.write_eof()
    return response


CONTROL_ROUTES = [
    web.get("/metrics", fleet_metrics),
    web.get("/services", list_services),
    web.post("/services", add_service),
    web.get("/services/{name}", get_service),
    *(
        web.route(method, "/services/{name}/faults", service_faults)
        for method in ("GET", "PUT", "PATCH", "DELETE")
    ),
]
