"""An HTTP/1.1 answer read off the wire by hand (observe/http.py sends the GETs), refusing
what h11 refuses: its status line and headers within MAX_HEAD_BYTES, its body framed by
length, chunks or the connection's end and decoded (gzip, deflate) within a limit, on the
wire and decoded. Four headers matter: the three that frame and encode the body, and
`Connection` (whether the connection may carry another GET).
"""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import NamedTuple

ACCEPT_ENCODING = "gzip, deflate"  # what `_Decoder` undoes, and nothing else
MAX_HEAD_BYTES = 64 * 1024  # an answer's status line and headers, and its longest line
_READ_BYTES = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.([0-9]) ([1-9][0-9]{2})(?:[ \t][^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header's name
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")  # extensions unread
_FRAMING = (b"content-length", b"transfer-encoding", b"content-encoding", b"connection")
_END = (b"\r\n", b"\n")  # an empty line
_NO_ANSWER = "Server disconnected without sending a response."
_CUT_SHORT = "peer closed connection without sending complete message body"


class GetFailed(Exception):
    """A GET that got no answer to read; the subclass's name opens a probe's detail."""


class RemoteProtocolError(GetFailed):
    """An answer not HTTP/1.1's (its head, its framing) or cut short; never quotes it.
    `answered` False: the connection ended before an answer began (a kept one: closed idle)."""

    def __init__(self, why: str, *, answered: bool = True) -> None:
        super().__init__(why)
        self.answered = answered


class DecodingError(GetFailed):
    """A Content-Encoding we do not read, or a body it does not decode."""


class Reply(NamedTuple):  # not observe/answers.py's Answer: a Prometheus document
    status: int
    body: bytes | None  # decoded; None once it or what came over the wire is over the limit
    reusable: bool  # read to its framed end, and the server keeps the connection open


async def read_answer(reader: asyncio.StreamReader, limit: int) -> Reply:
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
    framed = head.chunked or head.length is not None
    return Reply(head.status, bytes(body.decoded) if within else None,
                  within and framed and not head.close)  # fmt: skip


class _Head(NamedTuple):  # what an answer's head says of it and of its body
    status: int
    length: int | None  # Content-Length; None: chunked, or until the connection closes
    chunked: bool
    encoding: str  # Content-Encoding, every header's joined as one list
    close: bool  # the server closes the connection after it (HTTP/1.0, `Connection: close`)


async def _line(reader: asyncio.StreamReader, closed: str | None) -> bytes:
    """One line with its end (CRLF, or LF alone as h11 takes it); RemoteProtocolError
    `closed` (None: no answer) at the end of the stream, or for a line over the reader's limit."""
    try:
        line = await reader.readline()
    except ValueError:  # over the StreamReader's limit: MAX_HEAD_BYTES
        raise RemoteProtocolError(f"a line over {MAX_HEAD_BYTES} bytes") from None
    if not line.endswith(b"\n"):
        if closed is None:
            raise RemoteProtocolError(_NO_ANSWER, answered=False)
        raise RemoteProtocolError(closed)
    return line


async def _head(reader: asyncio.StreamReader) -> _Head:
    """The answer's status and headers, an informational answer (100 Continue) passed
    over; all their lines within MAX_HEAD_BYTES."""
    room = MAX_HEAD_BYTES
    while True:
        lines: list[bytes] = []
        while (line := await _line(reader, None)) not in _END:
            room -= len(line)
            if room < 0:
                raise RemoteProtocolError(f"a head over {MAX_HEAD_BYTES} bytes")
            lines.append(line.rstrip(b"\r\n"))
        found = _STATUS_LINE.fullmatch(lines[0]) if lines else None
        if found is None:
            raise RemoteProtocolError("illegal status line")
        status = int(found[2])
        if status == 101:  # what would follow is not HTTP/1.1
            raise RemoteProtocolError("a protocol switch nobody asked for")
        if status >= 200:
            return _framing(status, _fields(lines[1:]), found[1] == b"0")


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


def _framing(status: int, fields: dict[bytes, list[bytes]], http10: bool) -> _Head:
    """Where the body ends (RFC 9112, 6.3), how it is encoded, whether the connection ends."""
    encoding = b", ".join(fields.get(b"content-encoding", [])).decode("latin-1").lower()
    options = {o.strip() for v in fields.get(b"connection", []) for o in v.lower().split(b",")}
    close = http10 or b"close" in options
    if status in (204, 304):
        return _Head(status, 0, False, encoding, close)
    coding = b", ".join(fields.get(b"transfer-encoding", [])).lower()
    if coding:  # a length beside it means nothing
        if coding != b"chunked":
            raise RemoteProtocolError("Only Transfer-Encoding: chunked is supported")
        return _Head(status, None, True, encoding, close)
    lengths = {n.strip() for v in fields.get(b"content-length", []) for n in v.split(b",")}
    if len(lengths) > 1:
        raise RemoteProtocolError("conflicting Content-Length headers")
    if not lengths:
        return _Head(status, None, False, encoding, close)
    (length,) = lengths
    if not length.isdigit() or len(length) > 18:
        raise RemoteProtocolError("bad Content-Length")
    return _Head(status, int(length), False, encoding, close)


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
