"""Our own GETs (observe/http.py) against real loopback servers: compressed bodies read
within the cap (a gzip bomb costs the cap, not what it inflates to), no redirects, no
cookies kept, no proxy taken from the environment."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from tests.adapters.conftest import Handler
from venue_lab.processes import free_port
from venue_operator.model.observations import ProbeFailure
from venue_operator.observe.health import MAX_BODY_BYTES, probe
from venue_operator.observe.http import Dialer, get_bounded

Serve = Callable[[Handler], Awaitable[str]]
OK = b'{"status": "ok", "checks": {"database": "ok"}}'


def encoded(body: bytes, encoding: str) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
        return web.Response(body=body, headers=headers)

    return handler


def raw_deflate(body: bytes) -> bytes:
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return squeeze.compress(body) + squeeze.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(OK, mtime=0)),
        ("x-gzip", gzip.compress(OK, mtime=0)),
        ("deflate", zlib.compress(OK)),
        ("deflate", raw_deflate(OK)),
        ("identity", OK),
    ],
)
async def test_an_encoded_answer_is_read(serve: Serve, http: Dialer,
                                         encoding: str, body: bytes) -> None:  # fmt: skip
    result = await probe(http, await serve(encoded(body, encoding)), 1.0)
    assert result.ok, result.detail


async def test_a_gzip_bomb_costs_the_cap_not_what_it_inflates_to(
    serve: Serve, http: Dialer
) -> None:
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MB in ~64 KB
    url = await serve(encoded(bomb, "gzip"))
    tracemalloc.start()
    try:
        result = await probe(http, url, 5.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.failure is ProbeFailure.INVALID_JSON
    assert str(MAX_BODY_BYTES) in result.detail
    assert peak < 1024 * 1024, f"{peak} bytes allocated while reading a 64 MB bomb"


async def test_a_body_over_the_cap_on_the_wire_is_cut_off_too(serve: Serve, http: Dialer) -> None:
    # empty stored blocks: a wire that never stops while it inflates to nothing
    squeeze = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
    padding = b"".join(
        squeeze.compress(b"") + squeeze.flush(zlib.Z_FULL_FLUSH) for _ in range(40_000)
    )
    status, body = await get_bounded(http, await serve(encoded(padding, "gzip")), 64 * 1024, 5.0)
    assert (status, body) == (200, None)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("br", b"\x1b\x00"), ("gzip, gzip", gzip.compress(gzip.compress(OK, mtime=0), mtime=0)),
     ("gzip", b"not gzip at all")],
)  # fmt: skip
async def test_a_body_we_cannot_decode_is_a_failure_not_a_guess(
    serve: Serve, http: Dialer, encoding: str, body: bytes
) -> None:
    result = await probe(http, await serve(encoded(body, encoding)), 1.0)
    assert result.failure is ProbeFailure.UNREACHABLE
    assert result.detail.startswith("DecodingError"), result.detail


async def test_redirects_are_not_followed(serve: Serve, http: Dialer) -> None:
    async def redirect(request: web.Request) -> web.Response:
        if request.path == "/elsewhere":
            return web.Response(body=OK, content_type="application/json")
        raise web.HTTPFound("/elsewhere")

    result = await probe(http, await serve(redirect) + "/health", 1.0)
    assert result.failure is ProbeFailure.HTTP_STATUS and result.status_code == 302


async def test_cookies_are_not_kept(serve: Serve, http: Dialer) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.Response(body=OK, content_type="application/json")
        response.set_cookie("session", "tenant-set", path="/")
        return response

    url = await serve(handler)
    assert (await probe(http, url, 1.0)).ok and (await probe(http, url, 1.0)).ok
    assert seen == [None, None]


async def test_no_proxy_is_taken_from_the_environment(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = await serve(encoded(OK, "identity"))
    assert (await probe(Dialer(), url, 1.0)).ok
