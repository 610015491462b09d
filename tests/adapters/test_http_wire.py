"""Our own GETs (observe/http.py) against loopback servers that write their
answer byte for byte: every framing HTTP/1.1 allows, a body over the cap refused from its
framing, malformed answers, a head over its bound, a server that drips, the request as it
goes out and its connection aborted after it, URLs that are not sent."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from venue_operator.model.observations import ProbeFailure
from venue_operator.observe.health import MAX_BODY_BYTES, probe
from venue_operator.observe.http import MAX_HEAD_BYTES, Dialer

OK = b'{"status": "ok", "checks": {"database": "ok"}}'
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Raw:
    """Loopback servers that read a request's head (kept in `heads`) and run an `Answer`."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.servers: list[asyncio.Server] = []
        self.answering: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def serve(self, answer: Answer) -> str:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.answering[task] = writer
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                self.heads.append(await reader.readuntil(b"\r\n\r\n"))
                await answer(reader, writer)
            writer.transport.abort()

        server = await asyncio.start_server(connected, "127.0.0.1", 0)
        self.servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        """Every answer still being written ends on its connection aborted."""
        for writer in self.answering.values():
            writer.transport.abort()
        if self.answering:
            await asyncio.wait(self.answering, timeout=5)
        for server in self.servers:
            server.close()


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    servers = Raw()
    yield servers
    await servers.close()


def writes(*parts: bytes, pause: float = 0.0) -> Answer:
    """An answer of `parts`, `pause` seconds apart, then the connection closed."""

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)

    return answer


def chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def raw_deflate(body: bytes) -> bytes:
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return squeeze.compress(body) + squeeze.flush()


def sized(head: bytes, body: bytes = OK) -> bytes:
    return b"%s\r\nContent-Length: %d\r\n\r\n%s" % (head, len(body), body)


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"


@pytest.mark.parametrize(
    "parts",
    [
        [CHUNKED + b"\r\n", chunked(OK, 7)],
        [CHUNKED + b"Content-Encoding: gzip\r\n\r\n", chunked(gzip.compress(OK, mtime=0), 7)],
        [CHUNKED + b"Content-Encoding: deflate\r\n\r\n", chunked(raw_deflate(OK), 7)],
        # extensions on a chunk's size, trailers after the last: read past
        [CHUNKED + b"\r\n", b"%x;name=value\r\n%s\r\n0\r\nX-Checksum: 1\r\n\r\n" % (len(OK), OK)],
        # no length: the body ends with the connection, in HTTP/1.1 and 1.0
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", OK[:9], OK[9:]],
        [b"HTTP/1.0 200 OK\r\n\r\n", OK],
        [b"HTTP/1.1 100 Continue\r\n\r\n", sized(b"HTTP/1.1 200 OK")],
        [sized(b"HTTP/1.1 200 OK").replace(b"\r\n", b"\n")],  # LF alone ends a line too
        [sized(b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two")],  # obs-fold
        [b"HTTP/1.1 200 OK\r\nContent-Length: %d, %d\r\n\r\n%s" % (len(OK), len(OK), OK)],
        # a length beside chunked means nothing
        [CHUNKED + b"Content-Length: 3\r\n\r\n", chunked(OK, 100)],
    ],
)  # fmt: skip
async def test_an_answer_framed_any_way_http_allows_is_read(
    raw: Raw, http: Dialer, parts: list[bytes]
) -> None:
    result = await probe(http, await raw.serve(writes(*parts)), 2.0)
    assert result.ok, result.detail


@pytest.mark.parametrize(
    "parts",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"],  # and no more: it is not read
        [CHUNKED + b"\r\n", b"100000\r\n"],  # a chunk the size of which is over the cap
        [CHUNKED + b"\r\n", b"1\r\nx\r\n" * 20_000],  # 20 KB in 120 KB of framing
    ],
)
async def test_a_body_over_the_cap_is_refused_from_its_framing(
    raw: Raw, http: Dialer, parts: list[bytes]
) -> None:
    """Refused as soon as the length, a chunk's size or the framing says so, not after a
    wait for bytes that will not come (these servers send no more and keep the connection)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writes(*parts)(reader, writer)
        await reader.read()  # until the client is gone

    started = time.monotonic()
    result = await probe(http, await raw.serve(answer), 5.0)
    assert result.failure is ProbeFailure.INVALID_JSON, result
    assert str(MAX_BODY_BYTES) in result.detail
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n12345",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n12345",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n12345",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded-first: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + OK,  # closed 54 bytes short
        CHUNKED + b"\r\nzz\r\nabc\r\n",
        CHUNKED + b"\r\n2\r\nabc\r\n0\r\n\r\n",  # a chunk longer than its size
        CHUNKED + b"\r\n2\r\nab",  # closed inside a chunk
        CHUNKED + b"\r\n0\r\n",  # closed before the end of the trailers
        b"HTTP/1.1 200 OK\r\nContent-Le",  # closed inside the head
        b"",  # closed without a word
    ],
)
async def test_a_malformed_answer_is_a_failure(raw: Raw, http: Dialer, answer: bytes) -> None:
    """A failure in words of our own, never the server's bytes."""
    result = await probe(http, await raw.serve(writes(answer)), 2.0)
    assert result.failure is ProbeFailure.UNREACHABLE, result
    assert result.detail.startswith("RemoteProtocolError"), result.detail
    assert not any(quoted in result.detail for quoted in ("garbage", "many", "Bad", "abc"))


async def test_a_head_within_its_bound_is_read(raw: Raw, http: Dialer) -> None:
    padding = b"X-Padding: %s\r\n" % (b"p" * (MAX_HEAD_BYTES - 1024))
    answer = b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (padding, len(OK), OK)
    result = await probe(http, await raw.serve(writes(answer)), 2.0)
    assert result.ok, result.detail


@pytest.mark.parametrize(
    "parts",
    [
        [b"HTTP/1.1 200 OK\r\nX-Junk: ", *[b"j" * 4096] * 10_000],  # one line, never ended
        [b"HTTP/1.1 200 OK\r\n", *[b"X-Junk: %05d\r\n" % i for i in range(10_000)]],
    ],
)
async def test_a_head_over_its_bound_is_refused_without_reading_on(
    raw: Raw, http: Dialer, parts: list[bytes]
) -> None:
    """Refused once the head is over MAX_HEAD_BYTES, long before the deadline, with the
    server still writing."""
    started = time.monotonic()
    result = await probe(http, await raw.serve(writes(*parts)), 5.0)
    assert result.failure is ProbeFailure.UNREACHABLE, result
    assert result.detail.startswith("RemoteProtocolError"), result.detail
    assert str(MAX_HEAD_BYTES) in result.detail
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "answer",
    [
        # a byte of the head every 50 ms
        writes(*(bytes([b]) for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
               pause=0.05),
        # the head at once, then a byte of the body every 50 ms, never all of it
        writes(b"HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n", *[b" "] * 1000, pause=0.05),
        # a chunk of one byte every 50 ms, never the last
        writes(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", *[b"1\r\n \r\n"] * 1000,
               pause=0.05),
    ],
)  # fmt: skip
async def test_a_server_that_drips_meets_the_deadline(
    raw: Raw, http: Dialer, answer: Answer
) -> None:
    started = time.monotonic()
    result = await probe(http, await raw.serve(answer), 0.5)
    assert result.failure is ProbeFailure.TIMEOUT, result
    assert time.monotonic() - started < 1.5


async def test_the_request_goes_out_bare_and_its_connection_is_aborted_after(
    raw: Raw, http: Dialer
) -> None:
    """The path and query as written, the Host the URL names (its port: not the scheme's
    own), gzip and deflate accepted; no userinfo, no cookie. The server answers as if it
    would keep the connection: it is aborted all the same, nothing more is sent on it."""
    after: list[bytes | str] = []
    ended = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK))
        await writer.drain()
        try:
            after.append(await asyncio.wait_for(reader.read(1), 2.0))
        except ConnectionResetError:
            after.append("reset")
        ended.set()

    url = await raw.serve(answer)
    port = url.rsplit(":", 1)[1]
    result = await probe(http, url.replace("//", "//user:pw@") + "/health/full?x=1#top", 2.0)
    assert result.ok, result.detail
    await asyncio.wait_for(ended.wait(), 3.0)
    assert after in ([b""], ["reset"])
    line, *fields = raw.heads[0].decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (f.partition(": ") for f in fields if f)}
    assert line == "GET /health/full?x=1 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert not {"authorization", "cookie", "proxy-authorization"} & headers.keys()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999/health",  # a port over 65535
        "http://127.0.0.1:abc/health",
        "http://127.0.0.1:-1/health",
        "http:///health",  # no host
        "http://:80/health",
        "ftp://127.0.0.1/health",
        "http+unix://%2Frun%2Fsock/health",
        "127.0.0.1:8080/health",
        "http://127.0.0.1:8080/health\r\nX-Injected: 1",
        " http://127.0.0.1:8080/health",
        "http://[::1/health",
        "http://exa mple.svc/health",
        "http://venue.mine.svc%2Fevil.example/health",  # an escape is never decoded
        "http://[fe80::1%25eth0]:8080/health",
        "http://127.0.0.1:8080/\udcff",  # a lone surrogate: JSON can carry one
        "http://\udcff.svc/health",
    ],
)
async def test_a_url_we_cannot_send_is_unreachable_and_nothing_is_dialled(url: str) -> None:
    asked: list[str] = []

    def judge(host: str, ip: object, port: int) -> str:
        asked.append(host)
        return "not in this test"

    result = await probe(Dialer(judge), url, 1.0)
    assert result.failure is ProbeFailure.UNREACHABLE, result
    assert result.detail.split(":")[0] in ("InvalidURL", "UnsupportedProtocol"), result.detail
    assert asked == []
