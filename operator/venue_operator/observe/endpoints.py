"""One client per Prometheus URL, with its own threads and query slots.

prometheus-api-client is synchronous, so queries run in threads. Each URL gets its
own small pool and slot count: a URL that hangs ties up only its own threads (a
shared pool, or asyncio's default executor of min(32, cores + 4) threads, would let
it stall every other URL). A slot is given back when its thread ends, not when the
caller stops waiting, so a hung URL never holds more than `concurrency` threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from venue_operator.observe.answers import Answer, Points, matrix, parse
from venue_operator.observe.bounded_session import BoundedSession, PrometheusAuth, QueryFailed

GRACE = 0.5  # beyond a thread's own deadline: its more precise reason (cap, status) wins


@dataclass(frozen=True)
class Limits:
    """Bounds of every Prometheus query (set by the cluster admin's operator flags)."""

    timeout: float = 10.0  # to wait for a query slot; then for connect + read + body
    concurrency: int = 4  # queries in flight per Prometheus URL
    max_bytes: int = 4 * 1024 * 1024  # per answer; a 1,000-service batch answer is ~0.3 MiB
    idle: float = 600.0  # a URL unused this long is dropped with its client and threads
    max_urls: int = 64  # beyond this, the least recently used idle URLs are dropped


@dataclass
class Endpoint:
    """One Prometheus URL: its client, threads and slots."""

    client: Any  # PrometheusConnect (untyped)
    threads: ThreadPoolExecutor
    slots: asyncio.Semaphore
    in_flight: int = 0
    used: float = 0.0

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.client.close()


@dataclass
class Endpoints:
    limits: Limits
    clock: Callable[[], float] = time.monotonic
    by_url: dict[str, Endpoint] = field(default_factory=dict)
    # credentials for `auth_url` (the operator's --prometheus-url) only
    auth: PrometheusAuth | None = None
    auth_url: str | None = None

    def _credentials(self, url: str) -> PrometheusAuth | None:
        if self.auth is None or self.auth_url is None:
            return None
        return self.auth if url.rstrip("/") == self.auth_url.rstrip("/") else None

    def get(self, url: str) -> Endpoint:
        """The endpoint of `url`, made if needed; idle ones are evicted on the way."""
        now = self.clock()
        self.evict(now, keep=url)
        endpoint = self.by_url.get(url)
        if endpoint is None:
            client = PrometheusConnect(
                url=url,
                session=BoundedSession(self.limits.max_bytes, self._credentials(url)),
                # read=False: a read timeout is requests' ReadTimeout, not "Max retries"
                retry=Retry(total=0, read=False),
            )
            threads = ThreadPoolExecutor(self.limits.concurrency, thread_name_prefix="prometheus")
            endpoint = Endpoint(client, threads, asyncio.Semaphore(self.limits.concurrency))
            self.by_url[url] = endpoint
        endpoint.used = now
        return endpoint

    def evict(self, now: float, keep: str) -> None:
        """Drop URLs idle too long, and the least recently used idle ones while more than
        `max_urls` would be kept with `keep`."""
        idle = sorted((e.used, u) for u, e in self.by_url.items() if e.in_flight == 0 and u != keep)
        over = len(self.by_url) + (keep not in self.by_url) - self.limits.max_urls
        for rank, (used, url) in enumerate(idle):
            if now - used > self.limits.idle or rank < over:
                self.by_url.pop(url).close()

    def close(self) -> None:
        for endpoint in self.by_url.values():
            endpoint.close()
        self.by_url.clear()

    async def query(self, url: str, promql: str) -> Answer | str:
        """The parsed answer, or a one-line reason there is none; never raises. Waits at
        most `timeout` (+ grace) for a slot, then as long for the answer, whatever the
        thread does."""
        endpoint = self.get(url)
        timeout = self.limits.timeout
        endpoint.in_flight += 1  # from here on it is not idle: never evicted under us
        try:
            # a slot frees within one query's deadline (plus grace), unless its thread is stuck
            async with asyncio.timeout(timeout + GRACE):
                await endpoint.slots.acquire()
        except TimeoutError:
            endpoint.in_flight -= 1
            running = f"{endpoint.in_flight} queries to this Prometheus in flight"
            return f"no free slot within {timeout + GRACE:g}s ({running})"
        except BaseException:
            endpoint.in_flight -= 1
            raise
        loop = asyncio.get_running_loop()

        def give_back() -> None:
            endpoint.in_flight -= 1
            endpoint.slots.release()

        def release(_: Future[Answer | str]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to give back
                loop.call_soon_threadsafe(give_back)

        done = endpoint.threads.submit(_fetch, endpoint.client, promql, timeout)
        done.add_done_callback(release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(done), timeout + GRACE)
        except TimeoutError:
            return f"no answer within {timeout:g}s"


_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def transport_reason(exc: BaseException) -> str:
    """The error's class and, if there is one, the OS error text ("[Errno 111] Connection
    refused"); requests' own messages repeat the whole query URL."""
    errno = _ERRNO.search(str(exc))
    return type(exc).__name__ + (f": {errno.group(0)}" if errno else "")


def _fetch(client: Any, promql: str, seconds: float) -> Answer | str:
    """In a worker thread: one query through the bounded session, parsed there too (a
    batch answer at 1,000 services is ~0.3 MiB of JSON: not on the event loop). Errors
    become reasons here: a traceback kept in a future would keep the body it was reading."""
    try:
        return parse(client.custom_query(promql, timeout=seconds))
    except QueryFailed as exc:
        return str(exc)
    except (requests.Timeout, urllib3.exceptions.ReadTimeoutError):
        return f"no answer within {seconds:g}s"
    except Exception as exc:  # anything else from the client, by class
        return transport_reason(exc)


async def query_range(
    endpoints: Endpoints, url: str, promql: str, start: datetime, end: datetime, step: int
) -> Points | str:
    """The points of `promql` from `start` to `end`, or a one-line reason there are none."""
    client = endpoints.get(url).client
    timeout = endpoints.limits.timeout

    def fetch() -> Points | str:
        try:
            body = client.custom_query_range(
                promql, start_time=start, end_time=end, step=f"{step}s",
                params={"timeout": f"{timeout:g}s"}, timeout=timeout,
            )  # fmt: skip
            return matrix(body)
        except QueryFailed as exc:
            return str(exc)
        except Exception as exc:
            return transport_reason(exc)

    try:
        async with asyncio.timeout(timeout + 1):
            return await asyncio.to_thread(fetch)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
