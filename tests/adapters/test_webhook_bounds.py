"""The paging webhook against hostile receivers on loopback: an answer that drips forever
ends at the deadline, and an answer's body (a gzip bomb here) is never read."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.adapters.conftest import Handler
from venue_operator.model.pages import Page, PageAction
from venue_operator.model.spec import Notification
from venue_operator.paging import webhook

Serve = Callable[[Handler], Awaitable[str]]
NOTIFY = Notification.model_validate({"webhookSecretRef": {"name": "hook", "key": "url"}})
PAGE = Page(key="inc-1/trigger/P2", dedup_key="ns/venue/inc-1", incident="inc-1",
            action=PageAction.TRIGGER, severity="P2", reason="SeverityChanged", message="P2",
            recorded_at=datetime(2026, 12, 6, tzinfo=UTC))  # fmt: skip


async def send(url: str, monkeypatch: pytest.MonkeyPatch) -> float:
    """One page through the webhook; the seconds it took."""

    async def secret_value(*_: Any) -> str:
        return url

    monkeypatch.setattr(webhook.calls, "secret_value", secret_value)
    monkeypatch.setattr(webhook, "TIMEOUT_S", 0.5)
    started = time.monotonic()
    async with httpx.AsyncClient(follow_redirects=False) as http:
        await webhook.Pager(None, http)._one("ns", "venue", NOTIFY, PAGE)  # type: ignore[arg-type]
    return time.monotonic() - started


async def test_an_answer_that_drips_forever_ends_at_the_deadline(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(600):
            await response.write(b" ")
            await asyncio.sleep(0.05)  # a write well within any per-read timeout
        return response

    assert await send(await serve(drip) + "/hook", monkeypatch) < 2.0


async def test_an_answers_body_is_never_read(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)

    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    url = await serve(answer) + "/hook"
    tracemalloc.start()
    try:
        await send(url, monkeypatch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"{peak} bytes allocated for an answer that is not read"


async def test_a_result_taken_while_its_page_is_in_flight_is_not_lost(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop takes the results every cycle; a page still on its way then must still hand
    its result to the next take (else it would be sent again)."""
    arrived, answer = asyncio.Event(), asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        arrived.set()
        await answer.wait()
        return web.Response(status=202)

    url = await serve(slow) + "/hook"

    async def secret_value(*_: Any) -> str:
        return url

    monkeypatch.setattr(webhook.calls, "secret_value", secret_value)
    async with httpx.AsyncClient() as http:
        pager = webhook.Pager(None, http)  # type: ignore[arg-type]
        pager.send("ns", "venue", NOTIFY, [PAGE])
        await asyncio.wait_for(arrived.wait(), 5)  # the post is on its way
        assert pager.results("ns", "venue") == []
        answer.set()
        await pager.settle()
        assert pager.results("ns", "venue") == [webhook.Delivery(PAGE.key, None)]


async def test_an_unreadable_webhook_secret_is_said_by_name_and_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the optional Role the Secret read is refused: the page says which Secret and
    the HTTP status (in PagingFailed), never more of the error."""

    class Forbidden(Exception):
        status = 403

    async def secret_value(*_: Any) -> str:
        raise Forbidden('secrets "pager" is forbidden: User ... cannot get resource')

    monkeypatch.setattr(webhook.calls, "secret_value", secret_value)
    async with httpx.AsyncClient() as http:
        error = await webhook.Pager(None, http)._one("ns", "venue", NOTIFY, PAGE)  # type: ignore[arg-type]
    assert error == "webhook Secret hook/url unreadable (HTTP 403)"
