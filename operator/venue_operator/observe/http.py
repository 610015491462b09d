"""Our own GETs (health probes, each pod's /metrics and /health/full): HTTP/1.1 over
asyncio's streams, to an address judged first (`Dialer`), bounded in total time, in the
answer's head, and in its body on the wire and decoded (`get_bounded`; observe/wire.py reads
the answer).

No client, pool or cookie jar: a probe every 15 s outlives most servers' idle timeout (a
kept connection closed under us would read as the service failing). Within a cycle, the
probes' two GETs share one connection (`Link`): the connect was most of a probe's CPU, the
operator's and the service's (bench/probe_cost.py: 0.19 ms of CPU a probe, 0.12 sharing one).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from venue_operator import __version__
from venue_operator.observe.wire import (
    ACCEPT_ENCODING,
    MAX_HEAD_BYTES,
    GetFailed,
    RemoteProtocolError,
    read_answer,
)
from venue_operator.tenancy.policy import IPAddress

_HEADERS = (
    f"Accept: */*\r\nAccept-Encoding: {ACCEPT_ENCODING}\r\n"
    f"User-Agent: venue-operator/{__version__}\r\n"
).encode()
_CLOSE, _KEEP = b"Connection: close\r\n\r\n", b"\r\n"  # HTTP/1.1 keeps it by default
_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$")  # urlsplit would drop them unsaid
_HOST = re.compile(r"[\w.~!$&'()*+,;=:-]+", re.ASCII)  # RFC 3986's reg-name but %, IPs
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # what a path keeps as written; the rest is %-encoded
_QUERY_SAFE = _PATH_SAFE + "?"


@functools.cache
def _ssl_context(verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()  # the system's trust store (making one: 34 ms)
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


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))


class TargetRefused(Exception):
    """A connection the tenant boundaries refused before it was opened; nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidURL(GetFailed):
    """Not a URL we can send: no host, a bad port, a control character."""


class UnsupportedProtocol(GetFailed):
    """Neither http:// nor https:// (a Unix socket is not ours to open)."""


class ConnectError(GetFailed):
    """No address answered: not resolved, refused, unreachable, TLS refused."""


FAILURES = (GetFailed, OSError)  # what a GET raises besides TimeoutError and TargetRefused


async def get_bounded(
    dialer: Dialer, url: str, limit: int, seconds: float
) -> tuple[int, bytes | None]:
    """GET `url` through `dialer` within `seconds` in all (connect, answer, body;
    TimeoutError after): its status, and its decoded body or None once that or what came
    over the wire is over `limit` bytes. No redirect followed, the connection never kept."""
    return await Link(dialer).get(url, limit, seconds)


class Link:
    """GETs in turn to one host on one connection, while each answer leaves it open (read to
    its framed end, no `Connection: close`), else on a new one; the last GET (`last`) asks the
    server to close it, and `close` drops what is left. A kept connection the server closed
    meanwhile (no answer begun) is dialled again, once: a GET may be sent twice."""

    def __init__(self, dialer: Dialer) -> None:
        self.dialer = dialer
        self._kept: tuple[tuple[str, str, int], asyncio.StreamReader, asyncio.StreamWriter] | None
        self._kept = None

    async def get(
        self, url: str, limit: int, seconds: float, *, last: bool = True
    ) -> tuple[int, bytes | None]:
        """As `get_bounded`, on the kept connection to the URL's host if there is one."""
        target = _Url.of(url)
        kept, self._kept = self._kept, None
        async with asyncio.timeout(seconds):
            if kept is not None and kept[0] == target.origin:
                try:
                    return await self._ask(target, kept[1], kept[2], limit, last)
                except ConnectionError:
                    pass  # closed while idle: ask again on a connection of its own
                except RemoteProtocolError as exc:
                    if exc.answered:
                        raise
            elif kept is not None:
                kept[2].transport.abort()
            reader, writer = await self.dialer._connect(target)
            return await self._ask(target, reader, writer, limit, last)

    async def _ask(
        self, target: _Url, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        limit: int, last: bool,
    ) -> tuple[int, bytes | None]:  # fmt: skip
        kept = False
        try:
            writer.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n%s%s" % (
                target.target.encode(), target.authority.encode(), _HEADERS,
                _CLOSE if last else _KEEP))  # fmt: skip
            answer = await read_answer(reader, limit)
            if answer.reusable and not last:
                self._kept, kept = (target.origin, reader, writer), True
            return answer.status, answer.body
        finally:
            # abort, not close: all is read that will be, and a hostile server that never
            # answers TLS's close_notify must not keep the connection
            if not kept:
                writer.transport.abort()

    def close(self) -> None:
        if self._kept is not None:
            self._kept[2].transport.abort()
            self._kept = None


class _Url(NamedTuple):
    scheme: str
    host: str  # resolved, judged and TLS's server name: lower case, IDNA, IPv6 unbracketed
    port: int
    target: str  # the request line's: path and query, %-encoded
    authority: str  # the Host header, as httpx sent it: the port when not the scheme's own

    @property
    def origin(self) -> tuple[str, str, int]:  # where a kept connection goes
        return self.scheme, self.host, self.port

    @staticmethod
    @functools.lru_cache(maxsize=16_384)  # a service's probe URLs every cycle: parsed once
    def of(url: str) -> _Url:
        """`url` parsed as tenancy/policy.py parses it (urlsplit); userinfo and fragment
        dropped: they are never sent."""
        if _CONTROL.search(url):
            raise InvalidURL("a control character, or space at an end, in the URL")
        try:
            parts = urlsplit(url)
            port = parts.port
            path = quote(parts.path or "/", safe=_PATH_SAFE)
            query = "?" + quote(parts.query, safe=_QUERY_SAFE) if parts.query else ""
        except ValueError as exc:  # a port that is no number or over 65535, a lone surrogate
            raise InvalidURL(str(exc)) from None
        if parts.scheme not in _PORTS:
            raise UnsupportedProtocol(f"not an http:// or https:// URL: {parts.scheme!r}")
        host = _host(parts.hostname or "")
        default = _PORTS[parts.scheme]
        port = port or default  # 0 too, as tenancy/policy.py reads it
        name = f"[{host}]" if ":" in host else host
        authority = name if port == default else f"{name}:{port}"
        return _Url(parts.scheme, host, port, path + query, authority)


def _host(host: str) -> str:
    """The host as resolved and judged: as tenancy/policy.py read it, %-escapes and all (an
    escape is refused, never decoded into another name)."""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"host is not IDNA: {exc}") from None
    if not _HOST.fullmatch(host):
        raise InvalidURL("no host in the URL" if not host else f"invalid host {host[:80]!r}")
    return host


@dataclass(frozen=True)
class Dialer:
    """Where our GETs connect: the host resolved once, every address judged (`judge`; None:
    a pod's own IP, no tenant's boundary), then a judged address dialled, each in turn. TLS
    gets the URL's host as server name: the certificate is checked against the name, unless
    `verify` is False (https to a pod IP, which no certificate names)."""

    judge: Judge | None = None
    resolver: Resolver = system_resolver
    verify: bool = True

    async def _connect(self, url: _Url) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        addresses = await self._addresses(url.host, url.port)
        if self.judge is not None:
            for ip in addresses:
                if (why := self.judge(url.host, ip, url.port)) is not None:
                    raise TargetRefused(why)
        tls = _ssl_context(self.verify) if url.scheme == "https" else None
        name = url.host if tls else None  # the certificate is checked against it
        failed: list[OSError] = []
        for ip in addresses:
            try:  # the reader's limit: the longest line `_line` reads
                return await asyncio.open_connection(
                    sock=await _dial(ip, url.port), ssl=tls, server_hostname=name,
                    limit=MAX_HEAD_BYTES,
                )  # fmt: skip
            except OSError as exc:  # a certificate refused is an SSLError: an OSError
                failed.append(exc)
        if not failed:
            raise ConnectError(f"{url.host} has no address")
        raise ConnectError(str(failed[-1]) or type(failed[-1]).__name__) from failed[-1]

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]  # an address written in the URL: as written
        except ValueError:
            pass
        try:
            return _unique(await self.resolver(host, port))
        except OSError as exc:
            raise ConnectError(f"{host} does not resolve: {exc}") from exc


async def _dial(ip: IPAddress, port: int) -> socket.socket:
    """A TCP connection to an address already judged: open_connection(host) checks a literal
    address twice over, sock_connect once (those checks were a fifth of a probe's CPU)."""
    sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (str(ip), port))
    except BaseException:
        sock.close()
        raise
    return sock
