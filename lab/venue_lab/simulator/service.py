"""One simulated venue service: its faults, its behaviour and its own aiohttp site.

It listens on loopback only (127.0.0.1, or a lab pod's own 127.X.Y.Z). With `not_starting`
it really closes its listening socket (connections are refused), so its faults stay reachable
through the control port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable

import structlog
from aiohttp import web

from venue_lab.simulator.behaviour import ServiceBehaviour
from venue_lab.simulator.faults import (
    HEALTHY,
    FaultError,
    FaultOverrides,
    Faults,
    FaultValue,
    faults_for_image,
    parse_overrides,
)

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SHUTDOWN_TIMEOUT_S = 2.0

Clock = Callable[[], float]


class SimulatedService:
    """One venue service: its behaviour, its faults (image-derived + admin overrides), its port."""

    def __init__(
        self,
        name: str,
        port: int,
        behaviour: ServiceBehaviour,
        clock: Clock,
        hang_s: float,
        overrides: FaultOverrides | None = None,
        host: str = HOST,
        tls: ssl.SSLContext | None = None,
        path_prefix: str = "",
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.behaviour = behaviour
        self._clock = clock
        self._hang_s = hang_s
        self._overrides: FaultOverrides = dict(overrides or {})
        self._image: str | None = None
        self._image_faults = HEALTHY
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()  # set on close: lets hanging health handlers finish
        self._lock = asyncio.Lock()
        self._closed = False
        self._pending: set[asyncio.Task[None]] = set()
        self._tls = tls  # https, as a pod behind a mesh or with its own certificate
        self._path_prefix = path_prefix  # health and metrics also under it (/internal/metrics)

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        """The effective faults: the image's, overridden field by field by the admin's."""
        return self._image_faults.with_overrides(self._overrides)

    @property
    def listening(self) -> bool:
        return self._runner is not None

    def metrics_text(self, labels: str = "") -> str:
        return self.behaviour.metrics_text(self._clock(), labels)

    def describe(self) -> dict[str, object]:
        return {
            "port": self.port,
            "url": self.url,
            "listening": self.listening,
            "faults": self.faults.to_json(),
            "overrides": dict(self._overrides),
            "image": self._image,
            "image_faults": self._image_faults.active(),
        }

    async def set_faults(self, **fields: FaultValue) -> Faults:
        """Replace the admin overrides (validated; FaultError on bad input)."""
        return await self.change_faults(parse_overrides(fields), merge=False)

    async def patch_faults(self, **fields: FaultValue) -> Faults:
        """Merge into the admin overrides."""
        return await self.change_faults(parse_overrides(fields), merge=True)

    async def clear_faults(self) -> Faults:
        """Drop the admin overrides; the image-derived faults remain."""
        return await self.change_faults({}, merge=False)

    async def set_image(self, image: str) -> Faults:
        """Follow a new release image: its tag decides the image-derived faults."""
        if image != self._image:
            log.info("image changed", service=self.name, image=image)
        self._image = image
        self._apply(self._overrides, image_faults=faults_for_image(image))
        await self._sync_listening()
        return self.faults

    async def change_faults(
        self, overrides: FaultOverrides, merge: bool, wait: bool = True
    ) -> Faults:
        """Apply validated overrides; `wait=False` returns before the socket opens or closes."""
        self._apply({**self._overrides, **overrides} if merge else overrides)
        if wait:
            await self._sync_listening()
        else:
            # From a handler on this service's own port: closing waits for in-flight
            # handlers, so the caller's own response must not wait for the close.
            task = asyncio.create_task(self._sync_logging_errors())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return self.faults

    def _apply(self, overrides: FaultOverrides, image_faults: Faults | None = None) -> None:
        before = self.faults
        self._overrides = overrides
        if image_faults is not None:
            self._image_faults = image_faults
        after = self.faults
        self.behaviour.set_faults(after, self._clock())
        if after != before:
            log.info("faults changed", service=self.name, faults=after.active())

    async def start(self) -> None:
        """Bind the port (learning it when 0), then close it again if not starting."""
        async with self._lock:
            if self._runner is None:
                await self._open()
        await self._sync_listening()

    async def stop(self) -> None:
        self._closed = True
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._sync_listening()

    async def _sync_logging_errors(self) -> None:
        try:
            await self._sync_listening()
        except OSError as exc:  # e.g. the port was taken while the service was down
            log.error("cannot reopen the port", service=self.name, port=self.port, error=str(exc))

    async def _sync_listening(self) -> None:
        async with self._lock:
            wanted = not self._closed and not self.faults.not_starting
            if wanted and self._runner is None:
                await self._open()
            elif not wanted and self._runner is not None:
                await self._close()

    async def _open(self) -> None:
        app = web.Application()
        app[SERVICE] = self
        app.add_routes(SERVICE_ROUTES)
        if self._path_prefix:
            app.add_routes(prefixed_routes(self._path_prefix))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self._tls)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self.port = site.port
        self._runner = runner
        self._released = asyncio.Event()
        log.debug("service listening", service=self.name, port=self.port)

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        self._released.set()
        if runner is not None:
            await runner.cleanup()
        log.debug("service closed", service=self.name, port=self.port)

    async def hang(self) -> None:
        """Hold a health answer longer than any probe timeout, but not forever."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), self._hang_s)


SERVICE = web.AppKey("service", SimulatedService)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


JUNK_BYTES = 10 * 1024 * 1024


async def _junk(request: web.Request) -> web.StreamResponse:
    """10 MB of bytes that are no JSON, streamed (the prober is expected to stop early)."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = JUNK_BYTES
    await response.prepare(request)
    chunk = b"\xff{junk" * 8192
    with contextlib.suppress(ConnectionError):
        for _ in range(JUNK_BYTES // len(chunk)):
            await response.write(chunk)
        await response.write(b"\xff" * (JUNK_BYTES % len(chunk)))
    return response


async def _health(request: web.Request, full: bool) -> web.StreamResponse:
    service = request.app[SERVICE]
    if service.faults.slow_health:
        await service.hang()
    if service.faults.junk_health:
        return await _junk(request)
    answer = service.behaviour.full_health() if full else service.behaviour.health()
    return web.Response(status=answer.status, text=answer.body, content_type=answer.content_type)


async def health(request: web.Request) -> web.StreamResponse:
    return await _health(request, full=False)


async def full_health(request: web.Request) -> web.StreamResponse:
    return await _health(request, full=True)


async def metrics(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = service.metrics_text().encode()
    return web.Response(body=body, headers={"Content-Type": METRICS_TYPE})


async def faults_request(
    request: web.Request, service: SimulatedService, wait: bool
) -> web.Response:
    """GET/PUT/PATCH/DELETE of one service's faults; bad input changes nothing."""
    if request.method == "GET":
        return web.json_response(service.faults.to_json())
    overrides: FaultOverrides = {}
    if request.method != "DELETE":
        try:
            overrides = parse_overrides(await request.json())
        except json.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc}")
        except FaultError as exc:
            return _error(400, str(exc))
    faults = await service.change_faults(overrides, merge=request.method == "PATCH", wait=wait)
    return web.json_response(faults.to_json())


async def admin_faults(request: web.Request) -> web.Response:
    return await faults_request(request, request.app[SERVICE], wait=False)


SERVICE_ROUTES = [
    web.get("/health", health),
    web.get("/health/full", full_health),
    web.get("/metrics", metrics),
    *(web.route(method, "/admin/faults", admin_faults) for method in ("PUT", "PATCH", "DELETE")),
    web.get("/admin/faults", admin_faults),
]


def prefixed_routes(prefix: str) -> list[web.RouteDef]:
    """Health and metrics under `prefix` too (a pod serving them on a path of its own)."""
    return [
        web.get(f"{prefix}/health", health),
        web.get(f"{prefix}/health/full", full_health),
        web.get(f"{prefix}/metrics", metrics),
    ]
