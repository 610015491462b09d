"""Health probes: GET /health and /health/full with hard time and size bounds.

Every way a probe can go wrong becomes a distinct `ProbeFailure`, and the total
time of one probe is bounded by the spec's timeout, so one slow service never
delays the others (each probe runs in its own task).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from venue_operator.observations import ProbeFailure, ProbeResult

MAX_BODY_BYTES = 64 * 1024  # a health answer is a few hundred bytes; junk is cut off here


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _read_bounded(response: httpx.Response) -> bytes | None:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _interpret(status: int, body: bytes | None, elapsed: float) -> ProbeResult:
    if body is None:
        return ProbeResult(
            ProbeFailure.INVALID_JSON, f"body over {MAX_BODY_BYTES} bytes", status, seconds=elapsed
        )
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return ProbeResult(
            ProbeFailure.INVALID_JSON if status == 200 else ProbeFailure.HTTP_STATUS,
            f"HTTP {status}, body is not JSON",
            status,
            seconds=elapsed,
        )
    if not isinstance(doc, dict):
        return ProbeResult(
            ProbeFailure.INVALID_JSON, "body is not a JSON object", status, seconds=elapsed
        )
    raw_checks = doc.get("checks")
    checks = {str(k): str(v) for k, v in raw_checks.items()} if isinstance(raw_checks, dict) else {}
    failing = sorted(k for k, v in checks.items() if v != "ok")
    if failing:
        detail = ", ".join(f"{k}={checks[k]}" for k in failing)
        return ProbeResult(ProbeFailure.CHECK_FAILING, detail, status, checks, elapsed)
    if status != 200:
        return ProbeResult(ProbeFailure.HTTP_STATUS, f"HTTP {status}", status, checks, elapsed)
    if doc.get("status") != "ok":
        detail = f"status={doc.get('status')!r}"
        return ProbeResult(ProbeFailure.CHECK_FAILING, detail, status, checks, elapsed)
    return ProbeResult(None, "", status, checks, elapsed)


async def probe(client: httpx.AsyncClient, url: str, seconds: float) -> ProbeResult:
    """One GET of `url` bounded to `seconds` in total; never raises: the outcome is the result."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            async with client.stream("GET", url, timeout=seconds) as response:
                body = await _read_bounded(response)
                return _interpret(response.status_code, body, time.monotonic() - started)
    except (TimeoutError, httpx.TimeoutException):
        return ProbeResult(ProbeFailure.TIMEOUT, f"no answer within {seconds:g}s")
    except httpx.HTTPError as exc:
        failure = ProbeFailure.CONNECTION_REFUSED if _refused(exc) else ProbeFailure.UNREACHABLE
        return ProbeResult(failure, type(exc).__name__ + (f": {exc}" if str(exc) else ""))
