"""What a health probe costs the operator's process in CPU (#20): the probes as the operator
makes them (observe/health.py over observe/http.py: a client per evaluation, two GETs each,
through the tenant-checked backend) against a loopback server in another process; beside
them, the same GETs over httpcore's own anyio network layer and over one shared aiohttp
session (what the probes used before httpx). Prints CPU ms per probe, best of `--rounds`.

    PYTHONPATH=operator:lab .venv/bin/python bench/probe_cost.py [--evaluations 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpcore

from venue_lab.processes import free_port, wait_until
from venue_operator.observe.health import probe
from venue_operator.observe.http import CheckedBackend, probe_client
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


def operator_probes(inner: httpcore.AsyncNetworkBackend | None = None) -> Evaluation:
    """The operator's probes; `inner`: the network layer under the tenant check."""
    targets = ProbeTargets(Tenancy(service_cidrs=("127.0.0.0/8",)))

    async def evaluate(base: str) -> None:
        backend = CheckedBackend(targets.judge, targets.resolver)
        backend.inner = inner or backend.inner
        async with probe_client(backend) as client:
            for path in ("/health", "/health/full"):
                result = await probe(client, base + path, 5.0)
                assert result.ok, result

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
            "httpx, asyncio streams (the operator's)": operator_probes(),
            "httpx, httpcore's anyio layer": operator_probes(httpcore.AnyIOBackend()),
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
