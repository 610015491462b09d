"""The health adapter against real loopback HTTP servers: each failure is its own reason."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from tests.adapters.conftest import Handler
from venue_lab.processes import free_port
from venue_operator.model.observations import ProbeFailure
from venue_operator.observe.health import (
    MAX_BODY_BYTES,
    MAX_CHECK_VALUE,
    MAX_CHECKS,
    MAX_DETAIL,
    probe,
)
from venue_operator.record import loop_lag


def reply(status: int, body: str) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type="application/json")

    return handler


async def test_healthy(serve, http) -> None:  # type: ignore[no-untyped-def]
    url = await serve(reply(200, '{"status": "ok", "checks": {"database": "ok", "redis": "ok"}}'))
    result = await probe(http, url, 1.0)
    assert result.ok and result.checks == {"database": "ok", "redis": "ok"}


@pytest.mark.parametrize(
    ("status", "body", "failure", "detail"),
    [
        (503, '{"status": "error"}', ProbeFailure.HTTP_STATUS, "HTTP 503"),
        (503, '{"status": "error", "checks": {"database": "error", "redis": "ok"}}',
         ProbeFailure.CHECK_FAILING, "database=error"),
        (200, "<html>oops</html>", ProbeFailure.INVALID_JSON, "not JSON"),
        (200, '["ok"]', ProbeFailure.INVALID_JSON, "not a JSON object"),
        (200, '{"status": "degraded"}', ProbeFailure.CHECK_FAILING, "status='degraded'"),
        (500, "Internal Server Error", ProbeFailure.HTTP_STATUS, "HTTP 500"),
    ],
)  # fmt: skip
async def test_failures_are_typed(serve, http, status, body, failure, detail) -> None:  # type: ignore[no-untyped-def]
    result = await probe(http, await serve(reply(status, body)), 1.0)
    assert result.failure is failure
    assert detail in result.detail


async def test_connection_refused(http) -> None:  # type: ignore[no-untyped-def]
    result = await probe(http, f"http://127.0.0.1:{free_port()}/health", 1.0)
    assert result.failure is ProbeFailure.CONNECTION_REFUSED


async def test_timeout_is_bounded_and_does_not_delay_others(serve, http) -> None:  # type: ignore[no-untyped-def]
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="{}")

    slow = await serve(hang)
    fast = await serve(reply(200, '{"status": "ok"}'))
    started = time.monotonic()
    slow_result, fast_result = await asyncio.gather(probe(http, slow, 0.5), probe(http, fast, 0.5))
    assert slow_result.failure is ProbeFailure.TIMEOUT
    assert fast_result.ok and (fast_result.seconds or 0) < 0.5
    assert time.monotonic() - started < 2.0


async def test_a_timeout_the_operators_own_loop_ran_late_on_is_not_the_services(
    serve,
    http,  # type: ignore[no-untyped-def]
) -> None:
    """The event loop blocked past the probe's deadline (a starved replica): the timeout is
    taken 0.7 s late, and says so instead of calling the service down; on time it is the
    service's (above)."""

    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="{}")

    slow = await serve(hang)
    asyncio.get_running_loop().call_later(0.1, time.sleep, 1.1)  # the loop busy from 0.1 s
    result = await probe(http, slow, 0.5)
    assert result.failure is ProbeFailure.OPERATOR_LATE
    assert "late in the 0.5s wait" in result.detail  # ~0.7 s late


async def test_a_timeout_taken_on_time_after_the_loop_was_held_is_not_the_services(
    serve,
    http,  # type: ignore[no-untyped-def]
) -> None:
    """The loop held 0.7 s of a 1 s wait (a starved replica), then free again: the timer
    fires on time, but an answer may have waited unread meanwhile; the lag ticks saw it."""

    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="{}")

    slow = await serve(hang)
    ticking = asyncio.create_task(loop_lag.measure_lag())
    try:
        await asyncio.sleep(0)  # the ticker's first timer is set
        asyncio.get_running_loop().call_later(0.1, time.sleep, 0.7)  # held from 0.1 to 0.8 s
        result = await probe(http, slow, 1.0)
        assert result.failure is ProbeFailure.OPERATOR_LATE, result
        assert "late in the 1s wait" in result.detail, result.detail
        on_time = await probe(http, slow, 1.0)  # not held: the service's own timeout
        assert on_time.failure is ProbeFailure.TIMEOUT, on_time
    finally:
        ticking.cancel()
        loop_lag._recent.clear()  # no lag left for the next test to read


async def test_huge_body_is_cut_off(serve, http) -> None:  # type: ignore[no-untyped-def]
    async def junk(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(160):  # 10 MB
            await response.write(b"x" * 65536)
        return response

    result = await probe(http, await serve(junk), 5.0)
    assert result.failure is ProbeFailure.INVALID_JSON
    assert str(MAX_BODY_BYTES) in result.detail


async def test_a_long_check_value_is_cut_where_produced(serve, http) -> None:  # type: ignore[no-untyped-def]
    error = "connection to db failed: " + "x" * 2000
    body = json.dumps({"status": "error", "checks": {"database": error, "redis": "ok"}})
    result = await probe(http, await serve(reply(503, body)), 1.0)
    assert result.failure is ProbeFailure.CHECK_FAILING
    assert result.detail == "database=not ok", "a body is never reflected, only a known state"
    assert len(result.checks["database"]) <= MAX_CHECK_VALUE
    assert len(result.detail) <= MAX_DETAIL, "fits a status reason (1,024) with room to spare"


async def test_many_checks_are_bounded(serve, http) -> None:  # type: ignore[no-untyped-def]
    checks = {f"check-{i:04d}-" + "n" * 100: "error" for i in range(500)}
    body = json.dumps({"status": "error", "checks": checks})
    result = await probe(http, await serve(reply(503, body)), 1.0)
    assert len(result.checks) <= MAX_CHECKS and len(result.detail) <= MAX_DETAIL


async def test_a_dsn_in_a_check_value_is_redacted(serve, http) -> None:  # type: ignore[no-untyped-def]
    dsn = "postgres://venue:hunter2@db.prod:5432/venue"
    body = json.dumps({"status": "error", "checks": {"database": f"cannot reach {dsn}"}})
    result = await probe(http, await serve(reply(503, body)), 1.0)
    assert "hunter2" not in result.detail and "hunter2" not in result.checks["database"]
    assert "db.prod" not in result.detail and result.checks["database"] == "not ok"


@pytest.mark.parametrize(
    ("checks", "detail"),
    [
        ({"database": "error", "redis": "ok"}, "database=error"),
        ({"database": "DOWN"}, "database=down"),
        ({"database": "secret row: 4111-1111-1111-1111"}, "database=not ok"),
        ({"database": {"nested": "x"}}, "database=not ok"),
        ({"<script>": "error"}, "check0=error"),
        ({"x" * 100: "error"}, "check0=error"),
    ],
)  # fmt: skip
async def test_only_known_states_and_names_are_kept(serve, http, checks, detail) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"status": "error", "checks": checks})
    result = await probe(http, await serve(reply(503, body)), 1.0)
    assert result.failure is ProbeFailure.CHECK_FAILING and result.detail == detail


async def test_a_status_outside_the_vocabulary_is_not_reflected(serve, http) -> None:  # type: ignore[no-untyped-def]
    result = await probe(http, await serve(reply(200, '{"status": "leaked-value-123"}')), 1.0)
    assert result.failure is ProbeFailure.CHECK_FAILING and result.detail == "status='not ok'"


async def test_a_url_the_client_rejects_keeps_its_password_out(http) -> None:  # type: ignore[no-untyped-def]
    result = await probe(http, "http://user:hunter2@127.0.0.1:99999/health", 1.0)
    assert result.failure is ProbeFailure.UNREACHABLE
    assert "hunter2" not in result.detail, result.detail
