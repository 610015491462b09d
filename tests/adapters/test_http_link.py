"""One connection for a cycle's probes (observe/http.py `Link`): /health, then /health/full on
the connection the first answer leaves open; a new one when it does not, when the first GET
failed, or when the server closed the kept one while it was idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.adapters.test_http_wire import OK, Answer, Raw, sized, writes
from venue_operator.model.observations import ProbeFailure
from venue_operator.observe.health import MAX_BODY_BYTES, probe
from venue_operator.observe.http import Dialer, Link

KEPT = sized(b"HTTP/1.1 200 OK")  # framed, and nothing says the connection ends


def per_connection(*answers: Answer) -> Answer:
    """The n-th connection gets the n-th answer."""
    waiting = list(answers)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await waiting.pop(0)(reader, writer)

    return answer


def then_hold(part: bytes) -> Answer:
    """`part`, then the connection held open: a second request on it would get no answer."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(part)
        await writer.drain()
        await reader.read()  # until the client is gone

    return answer


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    servers = Raw()
    yield servers
    await servers.close()


def in_turn(heads: list[bytes], *answers: bytes) -> Answer:
    """Each answer after a request of its own on the same connection (the first request's
    head is read by `Raw`, the later ones' kept in `heads`), then the connection closed."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i, part in enumerate(answers):
            if i:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(part)
            await writer.drain()

    return answer


async def test_two_gets_share_one_connection_and_the_last_asks_it_closed(
    raw: Raw, http: Dialer
) -> None:
    later: list[bytes] = []
    base = await raw.serve(in_turn(later, KEPT, KEPT))
    link = Link(http)
    live = await probe(link, base + "/health", 2.0, last=False)
    full = await probe(link, base + "/health/full", 2.0)
    link.close()
    assert live.ok and full.ok, (live, full)
    assert len(raw.answering) == 1, "one connection for both"
    first, second = raw.heads[0], later[0]
    assert first.startswith(b"GET /health HTTP/1.1") and b"Connection: close" not in first
    assert second.startswith(b"GET /health/full HTTP/1.1") and b"Connection: close" in second


@pytest.mark.parametrize(
    ("first", "hold"),
    [
        (sized(b"HTTP/1.1 200 OK\r\nConnection: close"), True),  # said so
        (sized(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close"), True),
        (sized(b"HTTP/1.0 200 OK"), True),  # HTTP/1.0 closes unless it says otherwise
        (sized(b"HTTP/1.1 200 OK", b"x" * (MAX_BODY_BYTES + 1)), True),  # not read to its end
        (b"HTTP/1.1 200 OK\r\n\r\n" + OK, False),  # its body ends with the connection
    ],
)
async def test_an_answer_that_ends_its_connection_leaves_the_next_get_a_new_one(
    raw: Raw, http: Dialer, first: bytes, hold: bool
) -> None:
    """Reused, the held connection would never answer: the second probe would time out."""
    base = await raw.serve(per_connection(then_hold(first) if hold else writes(first),
                                          writes(KEPT)))  # fmt: skip
    link = Link(http)
    await probe(link, base + "/health", 2.0, last=False)
    full = await probe(link, base + "/health/full", 2.0)
    link.close()
    assert full.ok, full
    assert len(raw.answering) == 2 and raw.heads[1].startswith(b"GET /health/full ")


async def test_a_kept_connection_closed_while_idle_is_dialled_again_once(
    raw: Raw, http: Dialer
) -> None:
    base = await raw.serve(per_connection(writes(KEPT), writes(KEPT)))  # each then closed
    link = Link(http)
    live = await probe(link, base + "/health", 2.0, last=False)
    await asyncio.wait_for(_closed(raw), 2.0)  # the server has closed the kept one
    full = await probe(link, base + "/health/full", 2.0)
    link.close()
    assert live.ok and full.ok, (live, full)
    assert len(raw.answering) == 2 and raw.heads[1].startswith(b"GET /health/full ")


async def _closed(raw: Raw) -> None:
    await asyncio.wait(raw.answering)


async def test_after_a_failed_first_get_the_second_has_a_connection_of_its_own(
    raw: Raw, http: Dialer
) -> None:
    base = await raw.serve(per_connection(then_hold(b""), writes(KEPT)))
    link = Link(http)
    live = await probe(link, base + "/health", 0.3, last=False)
    full = await probe(link, base + "/health/full", 2.0)
    link.close()
    assert live.failure is ProbeFailure.TIMEOUT and full.ok, (live, full)
    assert len(raw.answering) == 2


async def test_a_bad_answer_on_a_kept_connection_is_a_failure_not_a_retry(
    raw: Raw, http: Dialer
) -> None:
    later: list[bytes] = []
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n"
    base = await raw.serve(in_turn(later, KEPT, bad))
    link = Link(http)
    await probe(link, base + "/health", 2.0, last=False)
    full = await probe(link, base + "/health/full", 2.0)
    link.close()
    assert full.failure is ProbeFailure.UNREACHABLE, full
    assert full.detail.startswith("RemoteProtocolError: bad Content-Length"), full.detail
    assert len(raw.answering) == 1
