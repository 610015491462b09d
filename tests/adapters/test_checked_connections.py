"""#23: a probe resolves the host once, judges every address and connects to the one judged
(observe/http.py's Dialer, observe/targets.py's ProbeTargets); a refused address is
never connected to. A loopback listener counts the requests that reach it."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.unit.names import static_resolver
from venue_lab.processes import free_port
from venue_operator.model.observations import ProbeFailure
from venue_operator.observe import http
from venue_operator.observe import targets as module
from venue_operator.observe.health import probe
from venue_operator.observe.targets import ProbeTargets
from venue_operator.tenancy.policy import ApiServer, Tenancy


class Listener:
    def __init__(self) -> None:
        self.hits: list[web.Request] = []
        self.server_names: list[str | None] = []  # TLS's SNI, as each request came
        self.port = free_port()


@contextlib.asynccontextmanager
async def serving(seen: Listener, tls: ssl.SSLContext | None = None) -> AsyncIterator[Listener]:
    """A healthy service on 127.0.0.1 that keeps every request it gets."""

    async def handler(request: web.Request) -> web.Response:
        seen.hits.append(request)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", seen.port, ssl_context=tls).start()
    try:
        yield seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    async with serving(Listener()) as seen:
        yield seen


NAMES = {"evil.mine.svc": ["127.0.0.1"], "meta.mine.svc": ["169.254.169.254"],
         "mixed.mine.svc": ["10.0.0.9", "127.0.0.1"], "venue.mine.svc": ["127.0.0.1"],
         "mapped.mine.svc": ["::ffff:127.0.0.1"]}  # fmt: skip


def targets(
    tenancy: Tenancy, api: Callable[[int], ApiServer] = lambda _: ApiServer()
) -> Callable[[int], ProbeTargets]:
    return lambda port: ProbeTargets(tenancy, static_resolver(NAMES), api(port))


def api_at(port: int) -> ApiServer:
    return ApiServer(frozenset({(ipaddress.ip_address("127.0.0.1"), port)}))


LAB = Tenancy(service_cidrs=("127.0.0.0/8",))


@pytest.mark.parametrize(
    ("url", "make", "why"),
    [
        ("http://admin:pw@evil.mine.svc:{port}/health", targets(Tenancy()),
         "evil.mine.svc resolves to a loopback address"),
        ("http://mapped.mine.svc:{port}/health", targets(Tenancy()), "loopback"),
        ("http://mixed.mine.svc:{port}/health", targets(Tenancy()), "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/health", targets(Tenancy()), "a loopback address"),
        ("http://0.0.0.0:{port}/health", targets(Tenancy()), "a loopback address"),
        # the API server on an allowed network: by name, by its address in any form
        ("http://venue.mine.svc:{port}/health", targets(LAB, api_at), "API server"),
        ("http://[::ffff:127.0.0.1]:{port}/health", targets(LAB, api_at), "API server"),
        ("http://127.0.0.1:{port}/health", targets(LAB, api_at), "API server"),
        # 127.0.0.1 as one number: the system's resolver reads it as the address
        ("http://2130706433:{port}/health",
         lambda port: ProbeTargets(LAB, api_server=api_at(port)), "API server"),
        ("http://localhost:{port}/health", lambda port: ProbeTargets(Tenancy()), "loopback"),
    ],
)  # fmt: skip
async def test_a_refused_address_is_never_connected_to(
    listener: Listener, url: str, make: Callable[[int], ProbeTargets], why: str
) -> None:
    result = await probe(make(listener.port).dialer, url.format(port=listener.port), 2.0)
    assert result.failure is ProbeFailure.NOT_ALLOWED and why in result.detail, result
    assert "nothing fetched" in result.detail and "pw" not in result.detail
    assert listener.hits == []


async def test_a_name_that_resolves_to_nothing_is_unreachable(listener: Listener) -> None:
    dialer = targets(LAB)(listener.port).dialer
    result = await probe(dialer, f"http://nowhere.mine.svc:{listener.port}/health", 2.0)
    assert result.failure is ProbeFailure.UNREACHABLE and listener.hits == []


async def test_an_allowed_name_is_fetched_from_the_address_judged(listener: Listener) -> None:
    """Resolved once (the fake knows only NAMES: a second resolution through the system
    would not find the name), with the URL's host in the Host header; no userinfo sent."""
    dialer = targets(LAB)(listener.port).dialer
    result = await probe(dialer, f"http://user:pw@venue.mine.svc:{listener.port}/h", 2.0)
    assert result.ok, result
    (request,) = listener.hits
    assert request.headers["Host"] == f"venue.mine.svc:{listener.port}"
    assert "Authorization" not in request.headers


async def test_the_api_servers_addresses_are_refreshed_and_kept_on_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = {"spec": {"clusterIP": "10.96.0.1"}}
    slice_ = {"endpoints": [{"addresses": ["192.168.1.10"]}], "ports": [{"port": 6443}]}

    async def read(_: object, namespace: str, name: str, answer: dict[str, object]) -> object:
        assert (namespace, name) == ("default", "kubernetes")
        return answer

    async def forbidden(*_: object) -> dict[str, object]:
        raise module.calls.ApiError(status=403, reason="Forbidden")

    monkeypatch.setattr(module.calls, "api_server_url", lambda _: "https://api.lab.test:6443")
    monkeypatch.setattr(module.calls, "get_service", functools.partial(read, answer=service))
    monkeypatch.setattr(module.calls, "get_endpoint_slice", functools.partial(read, answer=slice_))
    found = ProbeTargets(Tenancy(), static_resolver({"api.lab.test": ["203.0.113.7"]}))
    await found.refresh(object())  # type: ignore[arg-type]
    ip = ipaddress.ip_address
    known = {(ip("10.96.0.1"), None), (ip("192.168.1.10"), 6443), (ip("203.0.113.7"), 6443)}
    assert found.api_server.endpoints == known
    monkeypatch.setattr(module.calls, "get_endpoint_slice", forbidden)  # none on loopback
    await found.refresh(object())  # type: ignore[arg-type]
    assert found.api_server.endpoints == known
    assert found.judge("x.mine.svc", ip("203.0.113.7"), 6443) is not None


def _certificates(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for venue.mine.svc only (openssl, as the lab's PKI)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "1", "-subj", "/CN=probe-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
            "-subj", "/CN=venue.mine.svc")  # fmt: skip
    (tmp / "san.ext").write_text("subjectAltName=DNS:venue.mine.svc\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "tls.crt", "-days", "1", "-extfile", "san.ext")  # fmt: skip
    return tmp / "ca.crt", tmp / "tls.crt", tmp / "tls.key"


@pytest.fixture
async def tls_listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Listener]:
    """The healthy listener behind TLS with a certificate for venue.mine.svc; probes trust
    its CA only."""
    ca, crt, key = _certificates(tmp_path)
    seen = Listener()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(crt, key)
    server.sni_callback = lambda _tls, name, _context: seen.server_names.append(name)
    context = ssl.create_default_context(cafile=ca)
    monkeypatch.setattr(http, "_ssl_context", lambda verify=True: context)
    async with serving(seen, server):
        yield seen


async def test_tls_is_checked_against_the_name_while_the_judged_address_is_dialled(
    tls_listener: Listener,
) -> None:
    """The connection goes to 127.0.0.1 (what venue.mine.svc resolved to) and the server's
    certificate is checked for venue.mine.svc (sent as SNI); the same server reached under a
    name its certificate does not carry is refused by TLS, before any request."""
    port = tls_listener.port
    dialer = targets(LAB)(port).dialer
    good = await probe(dialer, f"https://venue.mine.svc:{port}/health", 5.0)
    wrong = await probe(dialer, f"https://evil.mine.svc:{port}/health", 5.0)
    assert good.ok, good
    assert wrong.failure is ProbeFailure.UNREACHABLE, wrong
    (request,) = tls_listener.hits
    assert request.headers["Host"] == f"venue.mine.svc:{port}"
    assert tls_listener.server_names == ["venue.mine.svc", "evil.mine.svc"]
