"""What a health probe costs the operator's process in CPU (#20): the probes as the operator
makes them (observe/health.py over observe/http.py: a connection per GET over asyncio's
streams, its HTTP/1.1 answer read by hand, through the tenant-checked dialer) against
a loopback server in another process; beside them, the same GETs on httpx as the probes had
them before (a client per evaluation, here on httpcore's anyio layer: the operator's
asyncio-streams backend for it is gone, and measured 0.74 ms a probe where this row
measured 0.94) and on one shared aiohttp session (before httpx). Prints CPU ms per probe,
best of `--rounds`.

    PYTHONPATH=operator:lab .venv/bin/python bench/probe_cost.py [--evaluations 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from venue_lab.processes import free_port, wait_until
from venue_operator.observe.health import probe
from venue_operator.observe.http import Link
from venue_operator.observe.targets import ProbeTargets
from venue_operator.tenancy.policy import Tenancy

SERVER = """
import sys
from aiohttp import web
async def ok(request):
    return web.json_response({"status": "ok", "database": "connected"})
app = web.Application()
app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

Evaluation = Callable[[str], Awaitable[None]]


def operator_probes() -> Evaluation:
    """The operator's probes, through the tenant-checked dialer: /health, then /health/full
    on the same connection (observe/http.py `Link`)."""
    dialer = ProbeTargets(Tenancy(service_cidrs=("127.0.0.0/8",))).dialer

    async def evaluate(base: str) -> None:
        link = Link(dialer)
        try:
            for path, last in (("/health", False), ("/health/full", True)):
                result = await probe(link, base + path, 5.0, last=last)
                assert result.ok, result
        finally:
            link.close()

    return evaluate


def connection_per_probe() -> Evaluation:
    """The same GETs, each on a connection of its own (the probes before session 30)."""
    dialer = ProbeTargets(Tenancy(service_cidrs=("127.0.0.0/8",))).dialer

    async def evaluate(base: str) -> None:
        for path in ("/health", "/health/full"):
            result = await probe(dialer, base + path, 5.0)
            assert result.ok, result

    return evaluate


def httpx_probes() -> Evaluation:
    """A client per evaluation as the probes had it on httpx: no connection kept, one
    SSLContext for all (making one: 34 ms), sniffio recorded absent (httpcore imports it at
    every lock; a failed import searches sys.path each time)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    tls = ssl.create_default_context()
    if importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]

    async def evaluate(base: str) -> None:
        async with httpx.AsyncClient(verify=tls, trust_env=False, limits=limits,
                                     timeout=None) as client:  # noqa: S113 # fmt: skip
            for path in ("/health", "/health/full"):
                async with asyncio.timeout(5.0), client.stream("GET", base + path) as response:
                    await response.aread()
                    assert response.status_code == 200

    return evaluate


def aiohttp_probes(session: aiohttp.ClientSession) -> Evaluation:
    async def evaluate(base: str) -> None:
        for path in ("/health", "/health/full"):
            async with session.get(base + path, allow_redirects=False) as response:
                await response.content.read(64 * 1024)
                assert response.status == 200

    return evaluate


async def cpu_ms_per_probe(evaluate: Evaluation, base: str, evaluations: int) -> float:
    """Evaluations spread as the operator spreads them (50 at a time); CPU of this process."""
    gate = asyncio.Semaphore(50)

    async def one() -> None:
        async with gate:
            await evaluate(base)

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(evaluations)))
    return (time.process_time() - started) * 1000 / (2 * evaluations)


async def measure(base: str, evaluations: int, rounds: int) -> dict[str, float]:
    best: dict[str, float] = {}
    connector = aiohttp.TCPConnector(force_close=True)  # a new connection per probe, as before
    async with aiohttp.ClientSession(connector=connector) as session:
        ways: dict[str, Evaluation] = {
            "HTTP/1.1 on asyncio streams, a connection a cycle (ours)": operator_probes(),
            "the same, a connection per GET (before session 30)": connection_per_probe(),
            "httpx, a client per evaluation, httpcore's anyio layer": httpx_probes(),
            "aiohttp, one shared session, GET and read only (before #20)": aiohttp_probes(session),
        }
        for _ in range(rounds):
            for name, evaluate in ways.items():
                ms = await cpu_ms_per_probe(evaluate, base, evaluations)
                best[name] = min(best.get(name, ms), ms)
    return best


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_until("the server", lambda: _listening(port), 30)
        best = asyncio.run(measure(f"http://127.0.0.1:{port}", args.evaluations, args.rounds))
    finally:
        server.terminate()
        server.wait(10)
    print(f"{args.evaluations} evaluations x 2 probes, best of {args.rounds}; CPU of the prober")
    print("| client | CPU ms / probe |\n|---|---|")
    for name, ms in best.items():
        print(f"| {name} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
