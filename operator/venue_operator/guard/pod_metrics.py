"""The rollout guard's eyes: each pod's own /metrics and /health/full on its pod IP, at the
port, scheme and paths of `rolloutGuard.pods` (default http, 3002, the runbook's paths).

Read directly, not through Prometheus: no scrape interval or rate window between a bad
version and the guard. Every read is bounded in time and size and isolated (a connection
of its own, observe/http.py); a pod that cannot be read is `reachable=False`, never
a zero. A hostNetwork pod is never read on its IP: that is its node's, and the spec's port
would reach the node's own services (the kubelet's); Prometheus may still stand in for it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from venue_operator.guard.judge import PodSample
from venue_operator.guard.tenants import busiest
from venue_operator.model.rollout_guard import PodEndpoint, RolloutGuard
from venue_operator.observe.health import probe
from venue_operator.observe.http import FAILURES, Dialer, get_bounded
from venue_operator.observe.prometheus import TENANT_CHARS
from venue_operator.tenancy.redact import one_line

MAX_METRICS_BYTES = 1024 * 1024
REQUESTS = "http_requests_total"
BUCKET = "http_request_duration_seconds_bucket"
# A pod's IP comes from the API server, not from a tenant: no boundary to judge; https
# unverified, as no certificate names a pod IP.
POD_DIALER = Dialer(verify=False)


class Unreadable(Exception):
    """A pod's /metrics could not be read or parsed; the message is one short line."""


@dataclass(frozen=True)
class PodTarget:
    """One pod as the watch-fed index sees it."""

    name: str
    ip: str | None
    template_hash: str
    created_at: datetime
    ready: bool
    restarts: int
    crash_looping: bool
    host_network: bool = False

    @classmethod
    def of(cls, summary: Mapping[str, Any]) -> PodTarget | None:
        created = summary.get("created")
        if not summary.get("hash") or not created:
            return None
        return cls(
            name=str(summary["name"]),
            ip=summary.get("ip"),
            template_hash=str(summary["hash"]),
            created_at=datetime.fromisoformat(str(created).replace("Z", "+00:00")),
            ready=bool(summary.get("ready")),
            restarts=int(summary.get("restarts") or 0),
            crash_looping=bool(summary.get("crash_looping")),
            host_network=bool(summary.get("host_network")),
        )


Tally = dict[str, tuple[float, float]]  # tenant -> (requests, 5xx)


def counters(
    text: str, tenant_label: str = "tenant", max_tenants: int = 20
) -> tuple[float, float, dict[float, float], Tally]:
    """(requests, 5xx, le -> cumulative count over every route, the busiest `max_tenants`
    tenants' requests and 5xx) from an exposition."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    tenants: Tally = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                failed = str(sample.labels.get("status_code", "")).startswith("5")
                requests += sample.value
                errors += sample.value if failed else 0.0
                tenant = sample.labels.get(tenant_label)
                if tenant and max_tenants:
                    name = one_line(tenant, TENANT_CHARS)
                    was_requests, was_errors = tenants.get(name, (0.0, 0.0))
                    tenants[name] = (was_requests + sample.value,
                                     was_errors + (sample.value if failed else 0.0))  # fmt: skip
            elif sample.name == BUCKET:
                le = float(sample.labels.get("le", "nan"))
                if not math.isnan(le):
                    buckets[le] = buckets.get(le, 0.0) + sample.value
    return requests, errors, buckets, busiest(tenants, max_tenants)


async def _metrics_text(dialer: Dialer, url: str, seconds: float) -> str:
    try:
        status, body = await get_bounded(dialer, url, MAX_METRICS_BYTES, seconds)
    except TimeoutError:
        raise Unreadable(f"no answer within {seconds:g}s") from None
    except FAILURES as exc:
        raise Unreadable(type(exc).__name__) from None
    if status != 200:
        raise Unreadable(f"HTTP {status}")
    if body is None:
        raise Unreadable(f"over {MAX_METRICS_BYTES} bytes")
    return body.decode("utf-8", errors="replace")


def _serves(pod: PodTarget) -> bool:
    return bool(pod.ip and pod.ready and not pod.host_network)


def _unread(pod: PodTarget) -> PodSample:
    return PodSample(
        pod.name, pod.template_hash, pod.created_at, pod.ready, pod.restarts, pod.crash_looping,
        reachable=False,
    )  # fmt: skip


def pod_url(endpoint: PodEndpoint, ip: str, path: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{endpoint.scheme}://{host}:{endpoint.port}{path}"


async def read_pod(
    dialer: Dialer, pod: PodTarget, seconds: float, guard: RolloutGuard
) -> PodSample:
    """One pod's counters and health; a pod not Ready is not probed (it serves no traffic)."""
    endpoint = guard.pods
    base = _unread(pod)
    if not _serves(pod) or pod.ip is None:
        return base
    health, metrics = await asyncio.gather(
        probe(dialer, pod_url(endpoint, pod.ip, endpoint.health_path), seconds),
        _metrics_text(dialer, pod_url(endpoint, pod.ip, endpoint.metrics_path), seconds),
        return_exceptions=True,
    )
    health_ok = health.ok if not isinstance(health, BaseException) else False
    unread = replace(base, health_ok=health_ok)
    if isinstance(metrics, BaseException):
        return unread
    try:
        requests, errors, buckets, tenants = counters(
            metrics, guard.tenants.label, guard.tenants.max_tenants
        )
    except ValueError:
        return unread
    return replace(unread, reachable=True, requests=requests, errors=errors, buckets=buckets,
                   tenants=tenants)  # fmt: skip


async def read_pods(
    pods: Iterable[PodTarget], seconds: float, guard: RolloutGuard
) -> tuple[PodSample, ...]:
    """Every pod at once, each bounded by `seconds`: one hung pod delays none of the others."""
    reads = (read_pod(POD_DIALER, pod, seconds, guard) for pod in pods)
    return tuple(await asyncio.gather(*reads))
