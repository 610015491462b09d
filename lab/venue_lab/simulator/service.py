"""One simulated venue service: its faults, its behaviour and its own port (responder.py).

It listens on loopback only (127.0.0.1, or a lab pod's own 127.X.Y.Z). With `not_starting`
it really closes its listening socket (connections are refused), so its faults stay reachable
through the control port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Iterator, Mapping

import structlog

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
from venue_lab.simulator.responder import (
    JSON,
    Answer,
    Handler,
    Reply,
    Request,
    Responder,
    Routes,
    Stream,
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
        self._faults = self._image_faults.with_overrides(self._overrides)
        self._responder: Responder | None = None
        self._released = asyncio.Event()  # set on close: lets hanging health handlers finish
        self._lock = asyncio.Lock()
        self._closed = False
        self._pending: set[asyncio.Task[None]] = set()
        self._tls = tls  # https, as a pod behind a mesh or with its own certificate
        self._routes = self._service_routes(path_prefix)

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        """The effective faults: the image's, overridden field by field by the admin's."""
        return self._faults  # kept by _apply: merging them anew takes 16 us, twice a probe

    @property
    def listening(self) -> bool:
        return self._responder is not None

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
        after = self._faults = self._image_faults.with_overrides(overrides)
        self.behaviour.set_faults(after, self._clock())
        if after != before:
            log.info("faults changed", service=self.name, faults=after.active())

    async def start(self) -> None:
        """Bind the port (learning it when 0), then close it again if not starting."""
        async with self._lock:
            if self._responder is None:
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
            if wanted and self._responder is None:
                await self._open()
            elif not wanted and self._responder is not None:
                await self._close()

    async def _open(self) -> None:
        responder = Responder(self._routes)
        self.port = await responder.listen(self.host, self.port, self._tls)
        self._responder = responder
        self._released = asyncio.Event()
        log.debug("service listening", service=self.name, port=self.port)

    async def _close(self) -> None:
        responder, self._responder = self._responder, None
        self._released.set()
        if responder is not None:
            await responder.close(SHUTDOWN_TIMEOUT_S)
        log.debug("service closed", service=self.name, port=self.port)

    async def hang(self) -> None:
        """Hold a health answer longer than any probe timeout, but not forever."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), self._hang_s)

    def _service_routes(self, prefix: str) -> Routes:
        """Health and metrics also under `prefix` (a pod serving them on a path of its own)."""
        get = {
            "/health": self._health,
            "/health/full": self._full_health,
            "/metrics": self._metrics,
        }
        routes: dict[str, Mapping[str, Handler]] = {
            base + path: {"GET": handler} for base in {"", prefix} for path, handler in get.items()
        }
        routes["/admin/faults"] = dict.fromkeys(
            ("GET", "PUT", "PATCH", "DELETE"), self._admin_faults
        )
        return routes

    def _health(self, request: Request) -> Reply:
        return self._health_reply(full=False)

    def _full_health(self, request: Request) -> Reply:
        return self._health_reply(full=True)

    def _health_reply(self, full: bool) -> Reply:
        if self.faults.slow_health:
            return self._slow_health(full)
        return self._health_answer(full)

    async def _slow_health(self, full: bool) -> Answer:
        await self.hang()
        return self._health_answer(full)

    def _health_answer(self, full: bool) -> Answer:
        if self.faults.junk_health:
            return Answer(200, Stream(JUNK_BYTES, _junk()), "application/json")
        health = self.behaviour.full_health() if full else self.behaviour.health()
        # charset as aiohttp's web.Response(text=...) added it
        return Answer(health.status, health.body.encode(), f"{health.content_type}; charset=utf-8")

    def _metrics(self, request: Request) -> Answer:
        return Answer(200, self.metrics_text().encode(), METRICS_TYPE)

    async def _admin_faults(self, request: Request) -> Answer:
        status, answer = await faults_request(self, request.method, request.body, wait=False)
        return Answer(status, json.dumps(answer).encode(), JSON)


JUNK_BYTES = 10 * 1024 * 1024
_JUNK_CHUNK = b"\xff{junk" * 8192


def _junk() -> Iterator[bytes]:
    """10 MB of bytes that are no JSON (the prober is expected to stop early)."""
    for _ in range(JUNK_BYTES // len(_JUNK_CHUNK)):
        yield _JUNK_CHUNK
    yield b"\xff" * (JUNK_BYTES % len(_JUNK_CHUNK))


async def faults_request(
    service: SimulatedService, method: str, body: bytes, wait: bool
) -> tuple[int, Mapping[str, object]]:
    """GET/PUT/PATCH/DELETE of one service's faults: the status and the JSON to answer (the
    faults, or the error); bad input changes nothing. Both the service's port and the
    control port answer with it."""
    if method == "GET":
        return 200, service.faults.to_json()
    overrides: FaultOverrides = {}
    if method != "DELETE":
        try:
            overrides = parse_overrides(json.loads(body))
        except FaultError as exc:  # a ValueError too
            return 400, {"error": str(exc)}
        except ValueError as exc:  # not JSON, or not UTF-8
            return 400, {"error": f"body is not JSON: {exc}"}
    faults = await service.change_faults(overrides, merge=method == "PATCH", wait=wait)
    return 200, faults.to_json()
