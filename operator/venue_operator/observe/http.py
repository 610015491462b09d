"""Our own GETs (health probes, each pod's /metrics and /health/full): one HTTP/1.1 GET per
connection over asyncio's streams, to an address judged first (`Dialer`), bounded in total
time, in the answer's head, and in its body on the wire and decoded (`get_bounded`).

No client, pool or cookie jar: a probe every 15 s outlives most servers' idle timeout (a
kept connection closed under us would read as the service failing). The answer is read by
hand, refusing what h11 refuses (three headers matter: length, chunks, encoding): 0.22 ms of
CPU a probe, against 0.30-0.38 on h11 and 0.74 on httpx (bench/probe_cost.py).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from venue_operator import __version__
from venue_operator.tenancy.policy import IPAddress

ACCEPT_ENCODING = "gzip, deflate"  # what `_Decoder` undoes, and nothing else
MAX_HEAD_BYTES = 64 * 1024  # an answer's status line and headers, and its longest line
_READ_BYTES = 64 * 1024
_HEADERS = (
    f"Accept: */*\r\nAccept-Encoding: {ACCEPT_ENCODING}\r\n"
    f"User-Agent: venue-operator/{__version__}\r\nConnection: close\r\n\r\n"
).encode()
_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$")  # urlsplit would drop them unsaid
_HOST = re.compile(r"[\w.~!$&'()*+,;=:-]+", re.ASCII)  # RFC 3986's reg-name but %, IPs
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # what a path keeps as written; the rest is %-encoded
_QUERY_SAFE = _PATH_SAFE + "?"
_STATUS_LINE = re.compile(rb"HTTP/1\.[0-9] ([1-9][0-9]{2})(?:[ \t][^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header's name
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")  # extensions unread
_FRAMING = (b"content-length", b"transfer-encoding", b"content-encoding")
_END = (b"\r\n", b"\n")  # an empty line
_NO_ANSWER = "Server disconnected without sending a response."
_CUT_SHORT = "peer closed connection without sending complete message body"


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


class GetFailed(Exception):
    """A GET that got no answer to read; the subclass's name opens a probe's detail."""


class InvalidURL(GetFailed):
    """Not a URL we can send: no host, a bad port, a control character."""


class UnsupportedProtocol(GetFailed):
    """Neither http:// nor https:// (a Unix socket is not ours to open)."""


class ConnectError(GetFailed):
    """No address answered: not resolved, refused, unreachable, TLS refused."""


class RemoteProtocolError(GetFailed):
    """An answer not HTTP/1.1's (its head, its framing) or cut short; never quotes it."""


class DecodingError(GetFailed):
    """A Content-Encoding we do not read, or a body it does not decode."""


FAILURES = (GetFailed, OSError)  # what a GET raises besides TimeoutError and TargetRefused


async def get_bounded(
    dialer: Dialer, url: str, limit: int, seconds: float
) -> tuple[int, bytes | None]:
    """GET `url` through `dialer` within `seconds` in all (connect, answer, body;
    TimeoutError after): its status, and its decoded body or None once that or what came
    over the wire is over `limit` bytes. No redirect followed, the connection never kept."""
    target = _Url.of(url)
    async with asyncio.timeout(seconds):
        reader, writer = await dialer._connect(target)
        try:
            writer.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n%s" % (
                target.target.encode(), target.authority.encode(), _HEADERS))  # fmt: skip
            return await _answer(reader, limit)
        finally:
            # abort, not close: all is read that will be, and a hostile server that never
            # answers TLS's close_notify must not keep the connection
            writer.transport.abort()


class _Url(NamedTuple):
    scheme: str
    host: str  # resolved, judged and TLS's server name: lower case, IDNA, IPv6 unbracketed
    port: int
    target: str  # the request line's: path and query, %-encoded
    authority: str  # the Host header, as httpx sent it: the port when not the scheme's own

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


async def _answer(reader: asyncio.StreamReader, limit: int) -> tuple[int, bytes | None]:
    """The answer's status and its decoded body, or None once that or what came over the
    wire is over `limit` bytes (read no further then)."""
    head = await _head(reader)
    body = _Body(head.encoding, limit)
    if head.chunked:
        within = await _chunks(reader, body)
    elif head.length is not None:  # over the limit, not read at all
        within = head.length <= limit and body.add(await _exactly(reader, head.length))
    else:  # until the server closes the connection
        within = True
        while within and (data := await reader.read(_READ_BYTES)):
            within = body.add(data)
    return head.status, bytes(body.decoded) if within else None


class _Head(NamedTuple):  # what an answer's head says of it and of its body
    status: int
    length: int | None  # Content-Length; None: chunked, or until the connection closes
    chunked: bool
    encoding: str  # Content-Encoding, every header's joined as one list


async def _line(reader: asyncio.StreamReader, closed: str) -> bytes:
    """One line with its end (CRLF, or LF alone as h11 takes it); RemoteProtocolError
    `closed` at the end of the stream, or for a line over the reader's limit."""
    try:
        line = await reader.readline()
    except ValueError:  # over the StreamReader's limit: MAX_HEAD_BYTES
        raise RemoteProtocolError(f"a line over {MAX_HEAD_BYTES} bytes") from None
    if not line.endswith(b"\n"):
        raise RemoteProtocolError(closed)
    return line


async def _head(reader: asyncio.StreamReader) -> _Head:
    """The answer's status and headers, an informational answer (100 Continue) passed
    over; all their lines within MAX_HEAD_BYTES."""
    room = MAX_HEAD_BYTES
    while True:
        lines: list[bytes] = []
        while (line := await _line(reader, _NO_ANSWER)) not in _END:
            room -= len(line)
            if room < 0:
                raise RemoteProtocolError(f"a head over {MAX_HEAD_BYTES} bytes")
            lines.append(line.rstrip(b"\r\n"))
        found = _STATUS_LINE.fullmatch(lines[0]) if lines else None
        if found is None:
            raise RemoteProtocolError("illegal status line")
        status = int(found[1])
        if status == 101:  # what would follow is not HTTP/1.1
            raise RemoteProtocolError("a protocol switch nobody asked for")
        if status >= 200:
            return _framing(status, _fields(lines[1:]))


def _fields(lines: list[bytes]) -> dict[bytes, list[bytes]]:
    """The values of the headers that frame and encode the body, by lower-case name;
    every line checked as a header line."""
    fields: dict[bytes, list[bytes]] = {}
    name = b""
    for line in lines:
        if line[:1] in (b" ", b"\t") and name:  # obs-fold: the value above goes on
            if name in fields:
                fields[name][-1] += b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise RemoteProtocolError("illegal header line")
        name = name.lower()
        if name in _FRAMING:
            fields.setdefault(name, []).append(value.strip())
    return fields


def _framing(status: int, fields: dict[bytes, list[bytes]]) -> _Head:
    """Where the body ends (RFC 9112, 6.3) and how it is encoded."""
    encoding = b", ".join(fields.get(b"content-encoding", [])).decode("latin-1").lower()
    if status in (204, 304):
        return _Head(status, 0, False, encoding)
    coding = b", ".join(fields.get(b"transfer-encoding", [])).lower()
    if coding:  # a length beside it means nothing
        if coding != b"chunked":
            raise RemoteProtocolError("Only Transfer-Encoding: chunked is supported")
        return _Head(status, None, True, encoding)
    lengths = {n.strip() for v in fields.get(b"content-length", []) for n in v.split(b",")}
    if len(lengths) > 1:
        raise RemoteProtocolError("conflicting Content-Length headers")
    if not lengths:
        return _Head(status, None, False, encoding)
    (length,) = lengths
    if not length.isdigit() or len(length) > 18:
        raise RemoteProtocolError("bad Content-Length")
    return _Head(status, int(length), False, encoding)


class _Body:
    """A body as it comes, decoded; over its limit once the decoded bytes or those on the
    wire are (chunks' framing counts: a body of tiny chunks costs its framing)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.decode = _Decoder(encoding)
        self.limit = limit
        self.decoded = bytearray()
        self.wire = 0

    def add(self, data: bytes, framing: int = 0) -> bool:
        """Whether the body is still within its limit with `data` added."""
        self.wire += len(data) + framing
        if self.wire > self.limit:
            return False
        self.decoded += self.decode(data, self.limit + 1 - len(self.decoded))
        return len(self.decoded) <= self.limit


async def _exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise RemoteProtocolError(_CUT_SHORT) from None


async def _chunks(reader: asyncio.StreamReader, body: _Body) -> bool:
    """A chunked body into `body`, trailers read past; False once it is over its limit."""
    while True:
        line = await _line(reader, _CUT_SHORT)
        found = _CHUNK_SIZE.fullmatch(line)
        if found is None:
            raise RemoteProtocolError("illegal chunk header")
        size = int(found[1], 16)
        if not size:
            break
        if body.wire + len(line) + size > body.limit:
            return False  # its size says it all: not read
        data = await _exactly(reader, size)
        end = await _line(reader, _CUT_SHORT)
        if end not in _END:
            raise RemoteProtocolError("a chunk longer than its size")
        if not body.add(data, len(line) + len(end)):
            return False
    while (trailer := await _line(reader, _CUT_SHORT)) not in _END:
        if not body.add(b"", len(trailer)):
            return False
    return True


class _Decoder:
    """Content-Encoding undone chunk by chunk, never more than `room` bytes out per chunk:
    a gzip bomb costs the cap plus one chunk, not what it inflates to."""

    def __init__(self, encoding: str) -> None:
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise DecodingError(f"Content-Encoding {encoding[:40]!r} is not read")
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
            raise DecodingError(f"{self.encoding} body is corrupt") from exc

    def _wbits(self, first: bytes) -> int:
        if self.encoding != "deflate":
            return zlib.MAX_WBITS | 16  # gzip
        # deflate is meant zlib-wrapped; some servers send it raw (aiohttp read both)
        return zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS
