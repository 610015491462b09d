"""A lean HTTP/1.1 responder on an `asyncio.Protocol`: each simulated service's own port.

At 5,000 simulated services the operator probes /health and /health/full 10,000 times a
15 s cycle, one connection each, on a 2-core machine that also runs the operator, the API
server and Prometheus. Served by aiohttp, a probe cost the simulator 0.21-0.31 ms of CPU
(median 0.28); served here 0.12-0.20 ms (median 0.16), within 0.02 ms of a bare Protocol
that answers fixed bytes (0.13-0.19; asyncio streams 0.14-0.21): what is left is asyncio's
and the kernel's work per connection (3,000 GET /health a run, one connection each with
`Connection: close` as the operator sends them; the simulator's CPU from /proc/PID/stat).
It does what the lab needs and no more: routes by exact path (the query ignored), whole
answers or one streamed under flow control, Content-Length request bodies only, bounded
(head 64 KiB, body 1 MiB), keep-alive, one request at a time a connection (pipelined ones
wait their turn); no HEAD.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast

import structlog

log = structlog.get_logger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
IDLE_TIMEOUT_S = 75.0  # aiohttp's keep-alive timeout; also bounds a head that never ends
BACKLOG = 128  # aiohttp's
TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header's name


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # without the query
    body: bytes


@dataclass(frozen=True, slots=True)
class Stream:
    """A body too large to hold: `length` bytes in `chunks`, written as the client reads."""

    length: int
    chunks: Iterator[bytes]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes | Stream
    content_type: str = JSON
    headers: Mapping[str, str] | None = None


Reply = Answer | Coroutine[Any, Any, Answer]
"""An answer now, or a coroutine to run for it (cancelled when the client goes)."""
Handler = Callable[[Request], Reply]
Routes = Mapping[str, Mapping[str, Handler]]
"""Path -> method -> handler."""


def plain(status: int, headers: Mapping[str, str] | None = None) -> Answer:
    """`404: Not Found`, as aiohttp words its own errors."""
    return Answer(status, b"%d: %s" % (status, _REASONS[status]), TEXT, headers)


class _Refused(Exception):
    """A request we do not read to its end: answered with `status`, then the connection closed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Responder:
    """One listening port answering `routes`: `port = await r.listen(...)`, `await r.close()`."""

    def __init__(self, routes: Routes) -> None:
        self._routes = routes
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._gone = asyncio.Event()  # every connection closed, once closing
        self.closing = False

    async def listen(self, host: str, port: int, tls: ssl.SSLContext | None) -> int:
        """Bind and listen; the port bound (the one given, or a free one for 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, ssl=tls, backlog=BACKLOG
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, grace_s: float) -> None:
        """Stop listening, let answers under way finish within `grace_s`, then cut the rest."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close_when_idle()
        if self._connections:
            try:
                await asyncio.wait_for(self._gone.wait(), grace_s)
            except TimeoutError:
                tasks = [task for c in list(self._connections) if (task := c.abort())]
                await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def route(self, request: Request) -> Reply:
        methods = self._routes.get(request.path)
        if methods is None:
            return plain(404)
        handler = methods.get(request.method)
        if handler is None:
            return plain(405, {"Allow": ",".join(methods)})
        return handler(request)

    def joined(self, connection: _Connection) -> None:
        self._connections.add(connection)

    def left(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        if self.closing and not self._connections:
            self._gone.set()


class _Connection(asyncio.Protocol):
    """One client: requests parsed from `_buffer` and answered in turn."""

    def __init__(self, responder: Responder) -> None:
        self._responder = responder
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._keep = True  # the connection outlives the current request
        self._task: asyncio.Task[Answer] | None = None  # an answer being worked out
        self._stream: Iterator[bytes] | None = None  # an answer being written
        self._writing_paused = False
        self._reading_paused = False
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._responder.joined(self)
        if self._responder.closing:  # accepted as the port closed
            self._transport.close()
        else:
            self._serve()

    def connection_lost(self, exc: Exception | None) -> None:
        self._responder.left(self)
        self._transport = None
        self._stream = None
        if self._idle is not None:
            self._idle.cancel()
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._task is None and self._stream is None:
            self._serve()
        elif len(self._buffer) > MAX_HEAD_BYTES + MAX_BODY_BYTES and self._transport:
            # Still reading while busy notices a client that goes (and ends a hang), but
            # what it sends ahead waits here: bounded, the rest in the kernel's buffers.
            self._transport.pause_reading()
            self._reading_paused = True

    def eof_received(self) -> bool | None:
        return None  # close: a client that stops sending gets no more answers

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._pump()
        self._serve()

    def close_when_idle(self) -> None:
        if self._task is None and self._stream is None and self._transport is not None:
            self._transport.close()

    def abort(self) -> asyncio.Task[Answer] | None:
        """Cut the connection now; the task still to finish, if any."""
        task = self._task
        if task is not None:
            task.cancel()
        if self._transport is not None:
            self._transport.abort()
        return task

    def _serve(self) -> None:
        """Answer what the buffer holds, a request at a time, until one has to wait."""
        transport = self._transport
        if transport is None:
            return
        if self._reading_paused and self._task is None and self._stream is None:
            transport.resume_reading()
            self._reading_paused = False
        while self._task is None and self._stream is None and not transport.is_closing():
            try:
                request = self._parse()
            except _Refused as refused:
                self._keep = False
                self._write(plain(refused.status))
                return
            if request is None:
                if self._idle is None:
                    self._idle = asyncio.get_running_loop().call_later(
                        IDLE_TIMEOUT_S, transport.close
                    )
                return
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            try:
                reply = self._responder.route(request)
            except Exception:
                log.exception("handler failed", method=request.method, path=request.path)
                reply = self._failed()
            if isinstance(reply, Answer):
                self._write(reply)
            else:
                self._task = asyncio.get_running_loop().create_task(reply)
                self._task.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Task[Answer]) -> None:
        self._task = None
        if task.cancelled():
            return  # the client went
        if (exc := task.exception()) is not None:
            log.error("handler failed", exc_info=exc)
            answer = self._failed()
        else:
            answer = task.result()
        self._write(answer)
        self._serve()

    def _failed(self) -> Answer:
        self._keep = False
        return plain(500)

    def _parse(self) -> Request | None:
        """The next whole request off the buffer, or None until more arrives."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES)
        if end < 0:
            if len(buffer) >= MAX_HEAD_BYTES:
                raise _Refused(431)
            return None
        request_line, *header_lines = buffer[:end].split(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise _Refused(400)
        method, target, version = parts
        keep, length = version == b"HTTP/1.1", None
        for line in header_lines:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise _Refused(400)
            name = name.lower()
            if name == b"content-length":
                given = _content_length(value)
                if length not in (None, given):
                    raise _Refused(400)
                length = given
            elif name == b"transfer-encoding":
                raise _Refused(411)  # a chunked body: no client of the lab sends one
            elif name == b"connection":
                options = {option.strip() for option in value.lower().split(b",")}
                keep = b"close" not in options and (keep or b"keep-alive" in options)
        length = length or 0
        if length > MAX_BODY_BYTES:
            raise _Refused(413)
        start = end + 4
        if len(buffer) < start + length:
            return None
        self._buffer = buffer[start + length :]
        self._keep = keep
        path = target.split(b"?", 1)[0].decode("latin-1")
        return Request(method.decode("latin-1"), path, buffer[start : start + length])

    def _write(self, answer: Answer) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        keep = self._keep and not self._responder.closing
        body = answer.body
        length = body.length if isinstance(body, Stream) else len(body)
        head = _head(answer, length, keep)
        self._keep = keep
        if isinstance(body, Stream):
            transport.write(head)
            self._stream = body.chunks
            self._pump()
        else:
            transport.write(head + body)
            self._done()

    def _pump(self) -> None:
        """Write the streamed answer while the transport takes it (its buffer stays small)."""
        while self._stream is not None and not self._writing_paused and self._transport:
            chunk = next(self._stream, None)
            if chunk is None:
                self._stream = None
                self._done()
            else:
                self._transport.write(chunk)

    def _done(self) -> None:
        if not self._keep and self._transport is not None:
            self._transport.close()


def _head(answer: Answer, length: int, keep: bool) -> bytes:
    lines = [
        b"HTTP/1.1 %d %s" % (answer.status, _REASONS[answer.status]),
        b"Content-Type: " + answer.content_type.encode(),
        b"Content-Length: %d" % length,
        b"Date: " + _date(int(time.time())),
        *(f"{name}: {value}".encode() for name, value in (answer.headers or {}).items()),
    ]
    if not keep:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _content_length(value: bytes) -> int:
    digits = value.strip()
    if not digits.isdigit():
        raise _Refused(400)
    # a length too long to be a body we take: no int() of its 64 KiB of digits
    return int(digits) if len(digits) <= 9 else MAX_BODY_BYTES + 1


@functools.lru_cache(maxsize=1)
def _date(second: int) -> bytes:
    """The Date header's value, formatted once a second."""
    return formatdate(second, usegmt=True).encode()
