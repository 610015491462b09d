"""The catalogue of hostile VenueServices (`CASES`), each with the clear error it must get,
and `try_case`, which applies one in the arena and measures what it cost."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from venue_lab import manifests
from venue_lab.hostile.arena import Setup, venue_object, venue_spec
from venue_lab.hostile.measure import Observed, leaks, watch
from venue_lab.hostile.server import EXPORTED_METRIC, EXPORTED_VALUE, MARKER, SECRET
from venue_lab.processes import LabError, wait_until
from venue_operator.kube.status_store import read_back


def hostile_spec(service_url: str, /, **prometheus: Any) -> dict[str, Any]:
    """A spec reading the series of the hostile endpoint's simulated service."""
    source = {"rateWindow": "30s", "matchLabels": {"service": "hostile"}, **prometheus}
    return venue_spec(service_url, prometheus=source)


def check(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((c for c in status.get("checks", []) if c["name"] == name), {})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


@dataclass
class Case:
    """One hostile VenueService: its spec, and the clear error it must get."""

    spec: Callable[[Setup], dict[str, Any]]
    clear: Callable[[Setup, dict[str, Any], list[dict[str, Any]]], str | None]
    timeout: float = 40.0


def prometheus_case(route: str, reason: str) -> Case:
    """spec.prometheus.url names the hostile server's `route`: every metric check is
    unknown with `reason` (a regex) and MetricsAvailable is False."""

    def spec(s: Setup) -> dict[str, Any]:
        return hostile_spec(s.service_url, url=s.server.url(route))

    def clear(s: Setup, status: dict[str, Any], _: list[dict[str, Any]]) -> str | None:
        said = check(status, "error_rate").get("reason", "")
        if condition(status, "MetricsAvailable").get("status") == "False" and re.search(
            reason, said
        ):
            return f"MetricsAvailable=False; error_rate unknown: {said}"
        return None

    return Case(spec, clear)


def event_case(url: Callable[[Setup], str], reason: str, text: str, **spec: Any) -> Case:
    def clear(s: Setup, _: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
        said = [e["message"] for e in events if e["reason"] == reason and text in e["message"]]
        return f"Event {reason}: {said[0]}" if said else None

    return Case(lambda s: {**hostile_spec(url(s)), **spec}, clear)


def api_port(s: Setup) -> int:
    return urlsplit(s.lab.cluster.server).port or 443


def refused(url: Callable[[Setup], str], text: str) -> Case:
    """spec.service.url names a target the operator must never connect to: a TargetRefused
    Event saying `text` (the canary counting no request is the test's)."""
    return event_case(url, "TargetRefused", text)


# #23: names that resolve (venue_lab.hostile.resolving) where a literal would be refused, and
# IPv4-mapped forms of those addresses; userinfo in the URL is never sent, nor reflected
SSRF_BY_ADDRESS: dict[str, Case] = {
    "ssrf-name-to-loopback": refused(
        lambda s: f"http://admin:{SECRET}@loopback.hostile.test:{s.canary.port}",
        "loopback.hostile.test resolves to a loopback address",
    ),
    "ssrf-name-to-mapped-loopback": refused(
        lambda s: f"http://mapped-loopback.hostile.test:{s.canary.port}",
        "resolves to a loopback address",
    ),
    "ssrf-mapped-loopback": refused(
        lambda s: f"http://[::ffff:{s.canary.host}]:{s.canary.port}", "a loopback address"
    ),
    "ssrf-name-to-link-local": refused(
        lambda s: f"http://admin:{SECRET}@metadata.hostile.test/latest/meta-data",
        "metadata.hostile.test resolves to a link-local address",
    ),
    "ssrf-name-to-mapped-link-local": refused(
        lambda s: "http://mapped-metadata.hostile.test/latest", "resolves to a link-local address"
    ),
    "ssrf-mapped-link-local": refused(
        lambda s: "http://[::ffff:169.254.169.254]/latest", "a link-local address"
    ),
    "ssrf-name-to-api-server": refused(
        lambda s: f"https://admin:{SECRET}@apiserver.hostile.test:{api_port(s)}",
        "the Kubernetes API server",
    ),
    "ssrf-name-to-mapped-api-server": refused(
        lambda s: f"https://mapped-apiserver.hostile.test:{api_port(s)}",
        "the Kubernetes API server",
    ),
    # in the allowed 127.0.0.1/32, as the lab's API server is: known by its address
    "ssrf-mapped-api-server": refused(
        lambda s: f"https://[::ffff:127.0.0.1]:{api_port(s)}", "the Kubernetes API server"
    ),
    # the default/kubernetes Service's ClusterIP, inside the allowed 10.0.0.0/8
    "ssrf-api-server-cluster-ip-wide-cidr": refused(
        lambda s: "https://10.96.0.1", "the Kubernetes API server"
    ),
    "ssrf-name-to-api-server-cluster-ip": refused(
        lambda s: "https://clusterip.hostile.test", "the Kubernetes API server"
    ),
}


def long_check(s: Setup, status: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
    if any(e["reason"] in ("InvalidSpec", "EvaluationFailed") for e in events):
        raise AssertionError(f"a long check value failed the evaluation: {events}")
    database = check(status, "database")
    said = database.get("reason", "")
    return f"database {database['level']}: {said}" if "not ok" in said else None


def cross_namespace(s: Setup, status: dict[str, Any], _: list[dict[str, Any]]) -> str | None:
    # read back whole: a calm check is stored by name only (ok: under the 1 % warning)
    found = check(read_back(status), "error_rate") if status.get("health") else {}
    level, value = found.get("observed"), found.get("value")
    leaked = level == "critical" or (value is not None and value >= 5)
    assert not leaked, f"another namespace's error rate leaked: {level} {value}"
    ours = s.lab.prometheus.query(victim_query(s.victim))
    theirs = float(ours[0]["value"][1]) if ours else 0.0  # type: ignore[index]
    if level in ("ok", "warning") and theirs > 0.5:
        return (f"error_rate reads its own namespace: {level}"
                f"{'' if value is None else f' at {value} %'}"
                f" (the other namespace's is {theirs:.0%})")  # fmt: skip
    return None


def victim_query(victim: str) -> str:
    return (f'sum(rate(http_requests_total{{namespace="{victim}",status_code=~"5.."}}[5s]))'
            f' / sum(rate(http_requests_total{{namespace="{victim}"}}[5s]))')  # fmt: skip


def exported_queries(s: Setup) -> dict[str, str]:
    """Another namespace's value, as an exporter in the tenant's namespace labels it: asked
    for by name, and by an aggregation over every series of the metric."""
    named = f'max({EXPORTED_METRIC}{{exported_namespace="{s.victim}"}})'
    return {"errorRate": named, "poolUtilisation": f"max({EXPORTED_METRIC})"}


def exported_namespace(s: Setup, status: dict[str, Any], _: list[dict[str, Any]]) -> str | None:
    shown = [c.get("value") for c in status.get("checks", [])]
    leaked = [v for v in shown if v is not None and abs(v - EXPORTED_VALUE * 100) < 0.01]
    assert not leaked, f"the other namespace's {EXPORTED_METRIC} leaked: {status['checks']}"
    # the victim's series is there to be read, from an exporter in the tenant's namespace
    stored = s.lab.prometheus.query(f'{EXPORTED_METRIC}{{exported_namespace="{s.victim}"}}')
    there = [
        x for x in stored if cast(dict[str, Any], x["metric"]).get("namespace") == s.fleet.namespace
    ]
    refused = check(status, "error_rate").get("reason", "")
    pinned = check(status, "pool_utilisation").get("reason", "")
    if there and "exported_namespace" in refused and "returned 0 series" in pinned:
        return f"error_rate unknown: {refused}; pool_utilisation unknown: {pinned}"
    return None


def range_vector(s: Setup, status: dict[str, Any], _: list[dict[str, Any]]) -> str | None:
    said = check(status, "error_rate").get("reason", "")
    return f"error_rate unknown: {said}" if "range vector" in said else None


SLOW = "metrics not read within|no answer within|not complete within"
CASES: dict[str, Case] = {
    "range-vector-override": Case(
        lambda s: hostile_spec(s.service_url, queries={"errorRate": "up[1m]"}), range_vector
    ),
    "non-json-200": prometheus_case("nonjson", "answer is not JSON"),
    "50mb-body": prometheus_case("big", r"answer over \d+ bytes"),
    # the batch's queries outlast the batcher's deadline (2 x (10 s + grace)) before their own
    "never-ending-stream": prometheus_case("stream", SLOW),
    "hang": prometheus_case("hang", SLOW),
    "500-with-1mb-body": prometheus_case("err500", r"HTTP 500"),
    "redirect-loop": prometheus_case("redirect", r"HTTP 302"),
    "2000-char-check-value": Case(lambda s: hostile_spec(s.server.url("longcheck")), long_check),
    "cross-namespace-promql": Case(
        lambda s: hostile_spec(s.service_url, queries={"errorRate": victim_query(s.victim)}),
        cross_namespace,
    ),
    "exported-namespace": Case(
        lambda s: hostile_spec(s.service_url, queries=exported_queries(s)), exported_namespace
    ),
    "ssrf-api-server": event_case(
        lambda s: s.lab.cluster.server, "TargetRefused", "the Kubernetes API server"
    ),
    "ssrf-link-local": event_case(
        lambda s: f"http://admin:{SECRET}@169.254.169.254/latest/meta-data?api_key={SECRET}",
        "TargetRefused",
        "a link-local address",
    ),
    **SSRF_BY_ADDRESS,
    "over-cap-max-replicas": event_case(
        lambda s: s.service_url,
        "SpecClamped",
        "remediation.scale.maxReplicas 1000 -> 20",
        remediation={"mode": "Off", "scale": {"maxReplicas": 1000}},
    ),
}


def try_case(setup: Setup, case: str) -> Observed:
    return try_cases(setup, (case,))


def try_cases(setup: Setup, cases: Sequence[str]) -> Observed:
    """Apply the hostile VenueServices of `cases` at once, watch them until each has its clear
    error and then the fleet (`watch`), grep for leaks while they still exist, then delete
    them."""
    fleet = setup.fleet
    names = {case: f"hostile-{case}"[:63] for case in cases}
    for case, name in names.items():
        fleet.apply(manifests.deployment(name, manifests.IMAGE, 2),
                    venue_object(name, CASES[case].spec(setup)))  # fmt: skip

    def clear() -> str | None:
        venues, said = fleet.venues(), []
        for case, name in names.items():
            found = CASES[case].clear(setup, venues.get(name, {}).get("status", {}),
                                      fleet.events(name))  # fmt: skip
            if found is None:
                return None
            said.append(found if len(cases) == 1 else f"{case}: {found}")
        return "; ".join(said)

    label = ", ".join(cases)
    try:
        try:
            timeout = max(CASES[case].timeout for case in cases)
            observed = watch(fleet, setup.operator, label, clear, timeout=timeout)
        except LabError as exc:
            venues = fleet.venues()
            states = {case: (venues.get(name, {}).get("status", {}),
                             [(e["reason"], e["message"]) for e in fleet.events(name)])
                      for case, name in names.items()}  # fmt: skip
            raise LabError(f"{exc}\nstatus and Events: {states}") from None
        observed.leaks = leaks(fleet, setup.operator.log_dir / "operator.log",
                               [*names.values(), *fleet.names], MARKER, SECRET)  # fmt: skip
        return observed
    finally:
        for name in names.values():
            setup.lab.cluster.kubectl("delete", "-n", fleet.namespace,
                                      "venueservice,deployment", name, "--wait=false",
                                      check=False)  # fmt: skip
        wait_until(f"{label} gone", lambda: not set(names.values()) & set(fleet.venues()), 30,
                   interval=0.25)  # fmt: skip
