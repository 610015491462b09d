"""The simulator's HTTP/1.1 responder (simulator/responder.py), byte by byte over loopback
sockets: framing, keep-alive, bounds, flow control, and hangs ended by either side."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from venue_lab.simulator import ServiceBehaviour, SimulatedService
from venue_lab.simulator import responder as responder_module
from venue_lab.simulator.responder import Answer, Request, Responder, Routes, Stream

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: venue\r\n"
CLOSE = b"Connection: close\r\n"


@pytest.fixture
async def service() -> AsyncIterator[SimulatedService]:
    behaviour = ServiceBehaviour(rate=20, seed=0, now=0.0)
    svc = SimulatedService("venue", 0, behaviour, clock=lambda: 0.0, hang_s=30.0)
    await svc.start()
    yield svc
    await svc.stop()


async def connect(port: int) -> Connection:
    return await asyncio.open_connection("127.0.0.1", port)


async def answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One answer off the connection: its status line, headers (lower-case names), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(1), 5) == b""


async def test_a_get_is_answered_as_aiohttp_answered_it(service: SimulatedService) -> None:
    reader, writer = await connect(service.port)
    writer.write(GET_HEALTH + CLOSE + b"\r\n")
    status, headers, body = await answer(reader)
    assert status == b"HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert (headers["content-length"], headers["connection"]) == ("16", "close")
    assert "GMT" in headers["date"]
    assert body == b'{"status": "ok"}'
    assert await closed(reader)  # Connection: close closes
    writer.close()


async def test_keep_alive_serves_two_requests_on_one_connection(
    service: SimulatedService,
) -> None:
    reader, writer = await connect(service.port)
    writer.write(GET_HEALTH + b"\r\n")
    first = await answer(reader)
    writer.write(b"GET /metrics?name=x HTTP/1.1\r\nHost: venue\r\n\r\n")
    second = await answer(reader)
    assert (first[0], second[0]) == (b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK")
    assert "connection" not in first[1] and "connection" not in second[1]
    assert second[1]["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"http_requests_total" in second[2]
    writer.close()


async def test_pipelined_requests_are_answered_in_turn_and_http_1_0_closes(
    service: SimulatedService,
) -> None:
    reader, writer = await connect(service.port)
    writer.write(b"GET /health/full HTTP/1.1\r\n\r\nGET /health HTTP/1.0\r\n\r\n")
    full, plain = await answer(reader), await answer(reader)
    assert json.loads(full[2])["checks"] == {"database": "ok", "redis": "ok"}
    assert (plain[1]["connection"], plain[2]) == ("close", b'{"status": "ok"}')
    assert await closed(reader)
    writer.close()


async def test_unknown_path_is_404_and_wrong_method_405(service: SimulatedService) -> None:
    reader, writer = await connect(service.port)
    writer.write(b"GET /nope HTTP/1.1\r\n\r\n")
    status, headers, body = await answer(reader)
    assert (status, body) == (b"HTTP/1.1 404 Not Found", b"404: Not Found")
    writer.write(b"POST /health HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")  # the same connection
    status, headers, body = await answer(reader)
    assert (status, headers["allow"]) == (b"HTTP/1.1 405 Method Not Allowed", "GET")
    writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n", 431),
        (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (64 * 1024), 431),  # a head never ending
        (b"PUT /admin/faults HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413),
        (b"PUT /admin/faults HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
        (b"PUT /admin/faults HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", 411),
        (b"PUT /admin/faults HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"GET /health HTTP/2\r\n\r\n", 400),
        (b"GET /health\r\n\r\n", 400),
    ],
)
async def test_a_request_not_read_to_its_end_is_refused_and_the_connection_closed(
    service: SimulatedService, request_bytes: bytes, status: int
) -> None:
    reader, writer = await connect(service.port)
    writer.write(request_bytes)
    line, headers, _ = await answer(reader)
    assert line.startswith(b"HTTP/1.1 %d " % status)
    assert headers["connection"] == "close"
    assert await closed(reader)
    writer.close()


async def test_a_put_with_a_body_sent_in_two_parts_changes_the_faults(
    service: SimulatedService,
) -> None:
    body = json.dumps({"redis_down": True}).encode()
    reader, writer = await connect(service.port)
    writer.write(b"PUT /admin/faults HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body))
    await writer.drain()
    await asyncio.sleep(0.05)  # the head alone first: the body is waited for
    writer.write(body)
    status, headers, answered = await answer(reader)
    assert (status, headers["content-type"]) == (
        b"HTTP/1.1 200 OK",
        "application/json; charset=utf-8",
    )
    assert json.loads(answered)["redis_down"] is True and service.faults.redis_down
    writer.close()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "body is not JSON: Expecting property name"),
        (b"\xff\xfe\xfa", "body is not JSON"),
        (b'{"bogus": 1}', "unknown fault field(s): bogus"),
    ],
)
async def test_bad_fault_input_is_400_and_the_connection_stays(
    service: SimulatedService, body: bytes, error: str
) -> None:
    reader, writer = await connect(service.port)
    writer.write(
        b"PATCH /admin/faults HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    status, _, answered = await answer(reader)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert json.loads(answered)["error"].startswith(error)
    writer.write(GET_HEALTH + b"\r\n")
    assert (await answer(reader))[0] == b"HTTP/1.1 200 OK"
    writer.close()


async def test_a_client_closing_mid_junk_leaves_the_service_serving(
    service: SimulatedService,
) -> None:
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
    await service.set_faults(junk_health=True)
    for _ in range(3):
        reader, writer = await connect(service.port)
        writer.write(GET_HEALTH + b"\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"Content-Length: 10485760\r\n" in head
        assert b"Content-Type: application/json\r\n" in head  # as aiohttp's: no charset
        await reader.readexactly(100_000)
        writer.transport.abort()  # as the operator stops: mid-body
    await service.clear_faults()
    reader, writer = await connect(service.port)
    writer.write(GET_HEALTH + CLOSE + b"\r\n")
    assert (await answer(reader))[2] == b'{"status": "ok"}'
    writer.close()
    assert errors == []


@contextlib.asynccontextmanager
async def serve(routes: Routes) -> AsyncIterator[int]:
    """A Responder of `routes` on a free port (yielded), closed after."""
    responder = Responder(routes)
    port = await responder.listen("127.0.0.1", 0, None)
    try:
        yield port
    finally:
        await responder.close(2.0)


async def test_a_stream_is_written_only_as_fast_as_the_client_reads() -> None:
    drawn = 0
    chunk = b"x" * 65536
    total = 1600 * len(chunk)  # 100 MiB: far more than the socket buffers hold

    def chunks() -> Iterator[bytes]:
        nonlocal drawn
        for _ in range(total // len(chunk)):
            drawn += len(chunk)
            yield chunk

    def big(request: Request) -> Answer:
        return Answer(200, Stream(total, chunks()), "application/octet-stream")

    async with serve({"/big": {"GET": big}}) as port:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # before the handshake
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET /big HTTP/1.1\r\n\r\n")
        await asyncio.sleep(0.3)  # not reading: the server must stop drawing chunks
        assert drawn < 16 * 1024 * 1024
        await reader.readexactly(1_000_000)
        writer.transport.abort()


async def test_a_hang_is_cancelled_when_its_client_goes() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(request: Request) -> Answer:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Answer(200, b"late")

    async with serve({"/hang": {"GET": hang}}) as port:
        _, writer = await connect(port)
        writer.write(b"GET /hang HTTP/1.1\r\n\r\n")
        await asyncio.wait_for(started.wait(), 5)
        writer.close()
        await asyncio.wait_for(cancelled.wait(), 5)


async def test_slow_health_is_released_when_the_service_closes(
    service: SimulatedService,
) -> None:
    await service.set_faults(slow_health=True)
    reader, writer = await connect(service.port)
    writer.write(GET_HEALTH + b"\r\n")
    answered = asyncio.create_task(answer(reader))
    await asyncio.sleep(0.3)
    assert not answered.done()  # held
    started = time.monotonic()
    await service.stop()  # the hang ends: answered, then closed
    assert time.monotonic() - started < 1.0
    status, headers, body = await answered
    assert (status, headers["connection"], body) == (
        b"HTTP/1.1 200 OK",
        "close",
        b'{"status": "ok"}',
    )
    assert await closed(reader)
    with pytest.raises(ConnectionRefusedError):
        await connect(service.port)
    writer.close()


async def test_a_failing_handler_is_500_and_closes() -> None:
    def broken(request: Request) -> Answer:
        raise RuntimeError("bug")

    async with serve({"/broken": {"GET": broken}}) as port:
        reader, writer = await connect(port)
        writer.write(b"GET /broken HTTP/1.1\r\n\r\n")
        status, headers, _ = await answer(reader)
        assert (status, headers["connection"]) == (b"HTTP/1.1 500 Internal Server Error", "close")
        writer.close()


async def test_an_idle_connection_is_closed(
    service: SimulatedService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(responder_module, "IDLE_TIMEOUT_S", 0.1)
    reader, writer = await connect(service.port)
    writer.write(b"GET /health HTTP/1.1\r\n")  # and the rest never comes
    assert await closed(reader)
    writer.close()
