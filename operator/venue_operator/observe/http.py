"""Our own GETs (health probes, each pod's /metrics and /health/full): httpx, a small client
per use, every read bounded in size, in decompression and (by the caller) in total time.

A client serves one VenueService's evaluation (its two probes) or one pod's read, never the
whole fleet: httpcore's pool walks all of its connections at each request and release, and
one pool for 2,000 probes a cycle (1,000 services) took most of a core (bench/README.md); a
pool of two costs nothing, and a tenant's hostile endpoint ties up no other tenant's pool.
What keeps a client cheap to make (0.07 ms of CPU, made and closed): one SSLContext shared
by all (making one reads the trust store: 34 ms), no proxy lookup in the environment, and
no failed import of sniffio at every lock (below).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import ssl
import sys
import zlib
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

if importlib.util.find_spec("sniffio") is None:
    # httpcore runs `import sniffio` at every lock and shielded close (7 a probe) and takes
    # asyncio when it fails; a failed import searches sys.path each time (0.07 ms a client
    # made and closed, more per probe). Recorded as absent, the import fails at once.
    sys.modules["sniffio"] = None  # type: ignore[assignment]

Clients = Callable[[], httpx.AsyncClient]  # makes a client; the caller closes it
ACCEPT_ENCODING = "gzip, deflate"  # what `read_bounded` decodes, and nothing else
# Connections are not kept: a probe every 15 s outlives most servers' idle timeout, and a
# connection the server closes as we reuse it would read as the service failing.
_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=0)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # the system's trust store, as aiohttp's was


def probe_client() -> httpx.AsyncClient:
    """A client for one evaluation's probes or one pod's reads: no redirects, no cookies
    kept, no proxy from the environment, no deadline but get_bounded's; close it after."""
    return httpx.AsyncClient(
        verify=_ssl_context(),
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
    async with asyncio.timeout(seconds), client.stream("GET", url) as response:
        return response.status_code, await read_bounded(response, limit)


# What a GET of ours can raise: the deadline's and httpx's timeouts, and every other failure
# (httpx.InvalidURL is no httpx.HTTPError; anyio's connect wraps what is no OSError, such as
# the OverflowError of a port over 65535, in an ExceptionGroup).
TIMEOUTS = (TimeoutError, httpx.TimeoutException)
FAILURES = (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError, ExceptionGroup)
