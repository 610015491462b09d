"""Credentials of the operator's own Prometheus (#12): sent to --prometheus-url only, read
from files (a mounted Secret) at every query, never to a URL a VenueService names."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.adapters.conftest import Handler
from venue_operator.observe.bounded_session import PrometheusAuth
from venue_operator.observe.endpoints import Limits
from venue_operator.observe.prometheus import PrometheusReader, Target

Serve = Callable[[Handler], Awaitable[str]]
EMPTY: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": []}}


class Recorder:
    def __init__(self) -> None:
        self.authorization: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.authorization.append(request.headers.get("Authorization"))
        return web.json_response(EMPTY)


def write(path: Path, text: str) -> None:
    path.write_text(text)  # a file of a mounted Secret (kubelet swaps it on rotation)


def target(url: str) -> Target:
    return Target(key="prod/venue", url=url, labels={"namespace": "prod", "service": "venue"})


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    return path


async def test_the_token_goes_to_the_operators_prometheus_only(serve: Serve, token: Path) -> None:
    own, other = Recorder(), Recorder()
    own_url, other_url = await serve(own.handle), await serve(other.handle)
    reader = PrometheusReader(limits=Limits(timeout=2.0),
                              auth=PrometheusAuth(bearer_token_file=str(token)),
                              auth_url=own_url + "/")  # fmt: skip
    try:
        await reader.read([target(own_url)])
        await reader.read([target(other_url)])
        assert own.authorization and set(own.authorization) == {"Bearer first-token"}
        assert other.authorization and set(other.authorization) == {None}
        write(token, "rotated-token")
        own.authorization.clear()
        await reader.read([target(own_url)])
        assert set(own.authorization) == {"Bearer rotated-token"}
    finally:
        reader.close()


async def test_basic_auth_from_a_file(serve: Serve, tmp_path: Path) -> None:
    own = Recorder()
    url = await serve(own.handle)
    write(tmp_path / "basic", "reader:s3cret:with-colon\n")
    reader = PrometheusReader(limits=Limits(timeout=2.0),
                              auth=PrometheusAuth(basic_auth_file=str(tmp_path / "basic")),
                              auth_url=url)  # fmt: skip
    try:
        await reader.read([target(url)])
    finally:
        reader.close()
    expected = "Basic " + base64.b64encode(b"reader:s3cret:with-colon").decode()
    assert set(own.authorization) == {expected}


async def test_an_unreadable_token_is_a_reason_without_its_content(serve: Serve) -> None:
    own = Recorder()
    url = await serve(own.handle)
    reader = PrometheusReader(limits=Limits(timeout=2.0),
                              auth=PrometheusAuth(bearer_token_file="/nonexistent/token"),
                              auth_url=url)  # fmt: skip
    try:
        readings = (await reader.read([target(url)]))["prod/venue"]
    finally:
        reader.close()
    assert own.authorization == [], "nothing sent without its credentials"
    reason = readings.request_rate.unknown_reason or ""
    assert "Prometheus credentials unreadable" in reason
