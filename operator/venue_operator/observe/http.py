"""Our own GETs (health probes, each pod's /metrics and /health/full): httpx, a small client
per use, every read bounded in size, in decompression and in total time (`get_bounded`).

A client serves one VenueService's evaluation (its two probes) or one pod's read, never the
whole fleet: httpcore's pool walks all of its connections at each request and release, and
one pool for 2,000 probes a cycle (1,000 services) took most of a core (bench/README.md); a
pool of two costs nothing, and a tenant's hostile endpoint ties up no other tenant's pool.
What keeps a client cheap to make (0.07 ms of CPU, made and closed): one SSLContext shared
by all (making one reads the trust store: 34 ms), no proxy lookup in the environment, and
no failed import of sniffio at every lock (below). Connections run on asyncio's streams
(`StreamBackend`), not httpcore's anyio layer: a probe costs 0.59 ms of CPU against 0.77 ms
on anyio and 0.20 ms for a bare GET on aiohttp's shared session (bench/probe_cost.py).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import ipaddress
import socket
import ssl
import sys
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, TypeVar

import httpcore
import httpx

from venue_operator.tenancy.policy import IPAddress

if importlib.util.find_spec("sniffio") is None:
    # httpcore runs `import sniffio` at every lock and shielded close (7 a probe) and takes
    # asyncio when it fails; a failed import searches sys.path each time (0.07 ms a client
    # made and closed, more per probe). Recorded as absent, the import fails at once.
    sys.modules["sniffio"] = None  # type: ignore[assignment]

T = TypeVar("T")
Clients = Callable[[], httpx.AsyncClient]  # makes a client; the caller closes it
ACCEPT_ENCODING = "gzip, deflate"  # what `read_bounded` decodes, and nothing else
# No pool limit (a probe's deadline would include the wait for a slot), and connections are
# not kept: a probe every 15 s outlives most servers' idle timeout, and a connection the
# server closes as we reuse it would read as the service failing.
_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=0)


@functools.cache
def _ssl_context(verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()  # the system's trust store, as aiohttp's was
    if not verify:  # only for a pod's own IP (guard/pod_metrics.py): no name to check
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""A host name's addresses (the port: getaddrinfo's); raises OSError when it has none."""
Judge = Callable[[str, IPAddress, int], str | None]
"""Why connecting to an address for a host is refused (tenancy/policy.py's words), or None."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The host's addresses as the system resolves them (getaddrinfo, /etc/hosts and DNS)."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _unique(ipaddress.ip_address(info[4][0]) for info in found)


def static_resolver(names: Mapping[str, Sequence[str]]) -> Resolver:
    """A resolver that knows only `names` (name -> addresses): tests and the lab."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not known")
        return [ipaddress.ip_address(a) for a in names[host]]

    return resolve


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))


class TargetRefused(Exception):
    """A connection the tenant boundaries refused before it was opened; nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _within(work: Awaitable[T], seconds: float | None, late: type[Exception]) -> T:
    """`work` within `seconds` (None: get_bounded's deadline is the bound), raising httpcore's
    `late` after."""
    if seconds is None:
        return await work
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError as exc:
        raise late(f"no answer within {seconds} s") from exc


class _Stream(httpcore.AsyncNetworkStream):
    """One connection as asyncio's streams: what httpcore's anyio layer does, without a cancel
    scope and task group around each read and write (a third of a probe's CPU, measured)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            return await _within(self._reader.read(max_bytes), timeout, httpcore.ReadTimeout)
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            await _within(self._writer.drain(), timeout, httpcore.WriteTimeout)
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # abort, not close: a probe has read all it will, and a hostile server that never
        # answers TLS's close_notify must not keep the connection for 30 s after
        self._writer.transport.abort()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        try:
            handshake = self._writer.start_tls(ssl_context, server_hostname=server_hostname)
            await _within(handshake, timeout, httpcore.ConnectTimeout)
        except (OSError, ssl.SSLError) as exc:  # a certificate refused is an SSLError
            self._writer.transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # asked of a kept connection (we keep none): never reuse
            return True
        names = {"ssl_object": "ssl_object", "client_addr": "sockname",
                 "server_addr": "peername", "socket": "socket"}  # fmt: skip
        return self._writer.get_extra_info(names[info]) if info in names else None


class StreamBackend(httpcore.AsyncNetworkBackend):
    """httpcore's connections over asyncio's streams (see `_Stream`)."""

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
        local_address: str | None = None, socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        local = None if local_address is None else (local_address, 0)
        try:
            opened = asyncio.open_connection(host, port, local_addr=local)
            reader, writer = await _within(opened, timeout, httpcore.ConnectTimeout)
        except (OSError, OverflowError) as exc:  # a port over 65535 is an OverflowError
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        raise httpcore.ConnectError("Unix sockets are not ours to open")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolve once, judge every address, connect to a judged one: a name cannot resolve to
    one address for the check and another for the connection. httpcore still hands TLS the
    URL's host as server name, so the certificate is checked against the name."""

    def __init__(self, judge: Judge, resolver: Resolver = system_resolver) -> None:
        self.judge = judge
        self.resolver = resolver
        self.inner: httpcore.AsyncNetworkBackend = StreamBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
        local_address: str | None = None, socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        addresses = await self._addresses(host, port)
        for ip in addresses:
            why = self.judge(host, ip, port)
            if why is not None:
                raise TargetRefused(why)
        failed: Exception = httpcore.ConnectError(f"{host} has no address")
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout, local_address,
                                                    socket_options)  # fmt: skip
            except httpcore.ConnectError as exc:
                failed = exc
        raise failed

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        try:
            return _unique(await self.resolver(host, port))
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        raise TargetRefused("a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def probe_client(
    backend: CheckedBackend | None = None, *, verify: bool = True
) -> httpx.AsyncClient:
    """A client for one evaluation's probes (through `backend`: a tenant's URL) or one pod's
    reads (`verify` False: https to a pod IP, which no certificate names): no redirects, no
    cookies kept, no proxy from the environment, no deadline but get_bounded's; close it
    after."""
    context = _ssl_context(verify)
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False, limits=_LIMITS)
    # httpx takes no network backend; httpcore's pool does
    transport._pool._network_backend = StreamBackend() if backend is None else backend
    return httpx.AsyncClient(
        transport=transport,
        verify=context,
        trust_env=False,
        follow_redirects=False,
        # get_bounded's deadline covers the whole request; httpx's own per-read timeouts
        # would each arm and cancel a timer (a tenth of a probe's CPU, measured)
        timeout=None,  # noqa: S113
        limits=_LIMITS,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        headers={"Accept-Encoding": ACCEPT_ENCODING},
    )


class _Decoder:
    """Content-Encoding undone chunk by chunk, never more than `room` bytes out per chunk:
    a gzip bomb costs the cap plus one chunk, not what it inflates to."""

    def __init__(self, encoding: str) -> None:
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise httpx.DecodingError(f"Content-Encoding {encoding[:40]!r} is not read")
        self.encoding = encoding
        self._inflate: zlib._Decompress | None = None

    def __call__(self, chunk: bytes, room: int) -> bytes:
        if self.encoding in ("", "identity"):
            return chunk[:room]
        if not chunk:
            return b""
        if self._inflate is None:
            self._inflate = zlib.decompressobj(self._wbits(chunk))
        try:
            return self._inflate.decompress(chunk, room)
        except zlib.error as exc:
            raise httpx.DecodingError(f"{self.encoding} body is corrupt") from exc

    def _wbits(self, first: bytes) -> int:
        if self.encoding != "deflate":
            return zlib.MAX_WBITS | 16  # gzip
        # deflate is meant zlib-wrapped; some servers send it raw (aiohttp read both)
        return zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS


async def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The decoded body, or None once it (or what came over the wire) is over `limit` bytes;
    reads no further then (junk is not kept)."""
    decode = _Decoder(response.headers.get("content-encoding", "").strip().lower())
    body = bytearray()
    wire = 0
    async for chunk in response.aiter_raw():
        wire += len(chunk)
        body += decode(chunk, limit + 1 - len(body))
        if len(body) > limit or wire > limit:
            return None
    return bytes(body)


async def get_bounded(
    client: httpx.AsyncClient, url: str, limit: int, seconds: float
) -> tuple[int, bytes | None]:
    """GET `url` within `seconds` in all (connect, answer, body; TimeoutError after): its
    status and its body as `read_bounded` gives it."""
    # userinfo in the URL would go out as Authorization: Basic; a probe target gets none
    bare = httpx.URL(url).copy_with(userinfo=b"")
    async with asyncio.timeout(seconds), client.stream("GET", bare) as response:
        return response.status_code, await read_bounded(response, limit)


# What a GET of ours can raise: the deadline's and httpx's timeouts, and every other failure
# (httpx.InvalidURL is no httpx.HTTPError).
TIMEOUTS = (TimeoutError, httpx.TimeoutException)
FAILURES = (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError)
